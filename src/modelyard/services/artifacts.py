"""The store as a whole: what a version added to it, and an integrity check of every object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from modelyard.domain.content import content_kind
from modelyard.domain.entities import VerifyReport
from modelyard.domain.principal import Permission
from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.services.base import Context, UseCase
from modelyard.services.catalog import Catalog
from modelyard.services.operations import operation
from modelyard.storage.content import usage
from modelyard.storage.content.leftovers import find_leftovers
from modelyard.storage.content.manifest import Manifest
from modelyard.storage.content.object_repair import restore_objects
from modelyard.storage.sql import repository as repo
from modelyard.storage.sql import tracking_repository as tracking_repo


class Artifacts(UseCase):
    def __init__(self, ctx: Context, catalog: Catalog) -> None:
        super().__init__(ctx)
        self.catalog = catalog

    @operation(Permission.READ)
    def added_bytes(self, name_or_uri: str, version: str | int | None = None) -> int:
        """Stored bytes a version needs that no earlier version of its model needs: what
        it added to the store (with chunking, only the chunks that changed)."""
        found = self.catalog.get_version(name_or_uri, version)
        earlier = self.catalog.search_versions(f"version < {found.version}", name=found.name)
        return usage.added_bytes(self.store, (found.digest, content_kind(found.artifact_kind)),
                                 [(v.digest, content_kind(v.artifact_kind)) for v in earlier])

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
            referenced = {*repo.referenced_digests(conn),
                          *tracking_repo.referenced_artifact_digests(conn)}
        missing: set[str] = set()
        for digest, kind in referenced:
            if not self.store.exists(digest):
                missing.add(digest)
            elif kind == "dir" and digest not in corrupt:
                missing.update(self._missing_entries(digest))
        leftovers = find_leftovers(self.store)
        return VerifyReport(checked=checked, corrupt=sorted(corrupt), missing=sorted(missing),
                            leftover_count=len(leftovers),
                            leftover_bytes=sum(f.size for f in leftovers))

    def _missing_entries(self, digest: str) -> set[str]:
        try:
            manifest = Manifest.from_bytes(self.store.get_bytes(digest))
        except (IntegrityError, NotFound, InvalidInput):
            return {digest}
        wanted = {e.digest for e in manifest.entries}
        return wanted - self.store.exists_many(wanted)
