"""Getting content back out: verified downloads and a whole-store integrity check."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from modelyard.domain.entities import ModelVersion, VerifyReport
from modelyard.domain.principal import Permission
from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.flavors import load_model
from modelyard.services.base import Context, UseCase
from modelyard.services.catalog import Catalog
from modelyard.services.operations import operation
from modelyard.storage.content import usage
from modelyard.storage.content.hashing import hash_file, hash_files
from modelyard.storage.content.leftovers import find_leftovers
from modelyard.storage.content.manifest import Manifest
from modelyard.storage.content.object_repair import restore_objects
from modelyard.storage.sql import repository as repo
from modelyard.storage.sql import tracking_repository as tracking_repo

Progress = Callable[[int], None]


class Artifacts(UseCase):
    def __init__(self, ctx: Context, catalog: Catalog) -> None:
        super().__init__(ctx)
        self.catalog = catalog

    @operation(Permission.READ)
    def download(
        self,
        name_or_uri: str,
        dest: str | os.PathLike[str],
        *,
        version: str | int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Write a version's artifact under ``dest``; every byte is checked against its digest.

        A single-file artifact lands as ``dest/<file name>``, a directory's files directly
        under ``dest``. On any failure nothing partial is left behind.
        """
        found = self.catalog.get_version(name_or_uri, version)
        target = Path(dest)
        if target.exists() and not target.is_dir():
            raise InvalidInput(f"download destination {str(dest)!r} is a file, not a folder")
        created = _missing_folders(target)
        try:
            target.mkdir(parents=True, exist_ok=True)
            self.store.materialize(found.digest, _kind(found.artifact_kind), target,
                                   filename=found.artifact_name or None, progress=progress)
        except BaseException:  # Ctrl-C included: no empty folder of ours stays behind
            for folder in created:
                with suppress(OSError):  # not empty: someone else wrote there meanwhile
                    folder.rmdir()
            raise
        return target / found.artifact_name if found.artifact_kind == "file" else target

    @operation(Permission.READ)
    def added_bytes(self, name_or_uri: str, version: str | int | None = None) -> int:
        """Stored bytes a version needs that no earlier version of its model needs: what
        it added to the store (with chunking, only the chunks that changed)."""
        found = self.catalog.get_version(name_or_uri, version)
        earlier = self.catalog.search_versions(f"version < {found.version}", name=found.name)
        return usage.added_bytes(self.store, (found.digest, _kind(found.artifact_kind)),
                                 [(v.digest, _kind(v.artifact_kind)) for v in earlier])

    @operation(Permission.READ)
    def load(self, name_or_uri: str, *, version: str | int | None = None,
             dest: str | os.PathLike[str] | None = None) -> Any:
        """A live object through the flavor the version was logged with (``modelyard.flavors``).

        A version without a flavor descriptor gives its verified local path. The local copy
        is re-hashed against the digest before any flavor reads it, cached or not, since
        pickle-based flavors run code on load.
        """
        found: ModelVersion = self.catalog.get_version(name_or_uri, version)
        cache = Path(dest) if dest else load_cache_path(found)
        if not cache.exists():
            staging = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            try:
                self.download(found.uri, staging)
                os.replace(staging, cache)
            except OSError:
                if not cache.exists():  # a concurrent loader that won the race is fine
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        path = cache / found.artifact_name if found.artifact_kind == "file" else cache
        local = hash_file(path) if found.artifact_kind == "file" else (
            Manifest.from_directory(path, hash_files).digest)
        if local != found.digest:
            raise IntegrityError(
                f"the local copy of {found.uri} at {path} does not match its digest",
                hint=f"delete {cache} and load again", digest=found.digest)
        return load_model(path)


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


def _missing_folders(target: Path) -> list[Path]:
    """``target`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    target = target.absolute()
    for folder in [target, *target.parents]:
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _kind(text: str) -> Literal["file", "dir"]:
    if text not in ("file", "dir"):
        raise IntegrityError(f"unknown artifact kind {text!r} in the registry")
    return "file" if text == "file" else "dir"


def load_cache_path(found: ModelVersion) -> Path:
    """Where ``load`` keeps a verified local copy of a version (by digest, so shared)."""
    root = Path(os.environ.get("MODELYARD_LOAD_CACHE", Path.home() / ".cache" / "modelyard"))
    return root / found.digest.split(":", 1)[1]
