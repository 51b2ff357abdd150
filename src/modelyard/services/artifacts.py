"""The store as a whole: what a model or dataset version added to it, and an integrity
check of every object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from modelyard.domain.content import content_kind
from modelyard.domain.entities import GarbageReport, VerifyReport
from modelyard.domain.principal import Permission
from modelyard.errors import IntegrityError, InvalidInput, ModelyardError, NotFound
from modelyard.services.base import Context, UseCase
from modelyard.services.catalog import Catalog
from modelyard.services.datasets import Datasets
from modelyard.services.operations import operation
from modelyard.storage.content import usage
from modelyard.storage.content.leftovers import find_leftovers
from modelyard.storage.content.manifest import Manifest
from modelyard.storage.content.object_repair import restore_objects
from modelyard.storage.content.sweep import DEFAULT_GRACE_SECONDS, plan_sweep, remove
from modelyard.storage.sql import repository as repo


class Artifacts(UseCase):
    def __init__(self, ctx: Context, catalog: Catalog, datasets: Datasets) -> None:
        super().__init__(ctx)
        self.catalog, self.datasets = catalog, datasets

    @operation(Permission.READ)
    def added_bytes(self, name_or_uri: str, version: str | int | None = None) -> int:
        """Stored bytes a version needs that no earlier version of its model needs: what
        it added to the store (with chunking, only the chunks that changed)."""
        found = self.catalog.get_version(name_or_uri, version)
        earlier = self.catalog.search_versions(f"version < {found.version}", name=found.name)
        return usage.added_bytes(self.store, (found.digest, content_kind(found.artifact_kind)),
                                 [(v.digest, content_kind(v.artifact_kind)) for v in earlier])

    @operation(Permission.READ)
    def dataset_added_bytes(self, name_or_uri: str, version: int | str | None = None) -> int:
        """Stored bytes a dataset version needs that no earlier version of the dataset
        needs: what a day's appended rows cost once chunking stores only what changed."""
        found = self.datasets.get_dataset(name_or_uri, version)
        return usage.added_bytes(self.store, (found.digest, content_kind(found.kind)),
                                 [(d.digest, content_kind(d.kind))
                                  for d in self.datasets.versions_before(found)])

    @operation(Permission.READ)
    def verify(self, progress: Callable[[str], None] | None = None, *,
               repair_from: str | None = None) -> VerifyReport:
        """Re-hash every stored object and check that every version's content is present;
        count what killed writers left behind.

        ``repair_from`` (a file, a folder, a folder store or a store URL): put corrupt and
        missing objects back from there, verified, then check again.
        """
        report = self._check(progress)
        if repair_from is None or report.ok:
            return report
        repaired = restore_objects(self.store, {*report.corrupt, *report.missing}, repair_from)
        after = self._check(progress)
        return replace(after, repaired=sorted(repaired))

    @operation(Permission.ADMIN)
    def collect_garbage(self, *, dry_run: bool = False,
                        grace_seconds: float = DEFAULT_GRACE_SECONDS) -> GarbageReport:
        """Remove stored objects no version, dataset or run artifact needs (deleted
        versions keep theirs), once older than ``grace_seconds``: content an upload has
        stored but not yet referenced is young, and stays."""
        with self.db.read() as conn:
            roots = self._roots(conn)
        keep = {digest for digest, _ in roots}
        for digest, kind in roots:
            if kind == "dir":
                keep.update(self._files_of(digest))
        sweep = plan_sweep(self.store, keep, grace_seconds)
        removed = ([g.digest for g in sweep.garbage] if dry_run
                   else remove(self.store, sweep.garbage, grace_seconds))
        sizes = {g.digest: g.size for g in sweep.garbage}
        return GarbageReport(removed, sum(sizes[d] for d in removed), sweep.kept, sweep.young,
                             dry_run)

    def _files_of(self, digest: str) -> set[str]:
        """A referenced folder's files; a manifest that cannot be read stops the gc rather
        than let it guess which files are still needed."""
        try:
            return {e.digest for e in self.store.get_manifest(digest).entries}
        except (NotFound, IntegrityError, InvalidInput) as exc:
            raise IntegrityError(
                f"the manifest {digest} of a registered folder cannot be read ({exc}); "
                "refusing to collect garbage", hint="repair it first: 'modelyard verify "
                "--repair --from SOURCE'", digest=digest) from None

    @staticmethod
    def _roots(conn: Any) -> set[tuple[str, str]]:
        """(digest, kind) of everything that stores content: versions (deleted ones too),
        dataset versions, run artifacts."""
        return {(digest, kind) for digest, kind, _ in repo.owners_of_digests(conn)}

    def _check(self, progress: Callable[[str], None] | None) -> VerifyReport:
        corrupt: list[str] = []
        checked = 0
        for digest in self.store.iter_digests():
            checked += 1
            if progress:
                progress(digest)
            if not self.store.verify(digest):
                corrupt.append(digest)
        with self.db.read() as conn:
            referenced = self._roots(conn)
        missing: set[str] = set()
        for digest, kind in referenced:
            if not self.store.exists(digest):
                missing.add(digest)
            elif kind == "dir" and digest not in corrupt:
                missing.update(self._missing_entries(digest))
        leftovers = find_leftovers(self.store)
        return VerifyReport(checked=checked, corrupt=sorted(corrupt), missing=sorted(missing),
                            leftover_count=len(leftovers),
                            leftover_bytes=sum(f.size for f in leftovers),
                            owners=self._owners({*corrupt, *missing}))

    def _owners(self, damaged: set[str]) -> dict[str, list[str]]:
        """What holds each damaged digest: a version, dataset or run artifact, or a file
        of one's folder (read from its manifest, when that is intact)."""
        if not damaged:
            return {}
        with self.db.read() as conn:
            roots = repo.owners_of_digests(conn)
        owners: dict[str, list[str]] = {}
        entries: dict[str, list[tuple[str, str]]] = {}  # folder digest → its (path, digest)
        for digest, kind, owner in roots:
            if digest in damaged:
                owners.setdefault(digest, []).append(owner)
            elif kind == "dir":
                if digest not in entries:
                    try:
                        entries[digest] = [(e.path, e.digest)
                                           for e in self.store.get_manifest(digest).entries]
                    except ModelyardError:
                        entries[digest] = []
                for path, inner in entries[digest]:
                    if inner in damaged:
                        owners.setdefault(inner, []).append(f"{owner} ({path})")
        return owners

    def _missing_entries(self, digest: str) -> set[str]:
        try:
            manifest = Manifest.from_bytes(self.store.get_bytes(digest))
        except (IntegrityError, NotFound, InvalidInput):
            return {digest}
        wanted = {e.digest for e in manifest.entries}
        return wanted - self.store.exists_many(wanted)
