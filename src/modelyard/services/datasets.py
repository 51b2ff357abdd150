"""Named, numbered dataset versions (``datasets:/NAME/3``) and dataset inputs for lineage.

A registered version is content in the registry's object store plus one row; the
number comes from the dataset's counter row, bumped inside the insert's transaction
exactly like model versions. ``resolve_dataset_input`` turns whatever a caller names
as training data (a path, a ``.yard`` pointer, a ``datasets:/`` address) into digests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelyard.domain import pointer as pointers
from modelyard.domain.datasets import DatasetVersion, is_dataset_uri, parse_dataset_uri
from modelyard.domain.names import check_model_name, check_tags
from modelyard.domain.paging import Page, check_max_results, collect, decode_token
from modelyard.domain.principal import Permission
from modelyard.errors import InvalidInput, NotFound
from modelyard.services.base import UseCase
from modelyard.services.data.progress import BytesMeter
from modelyard.services.data.scan import describe
from modelyard.services.data.transfer import copy_objects, object_digests
from modelyard.services.data.workspace import Workspace
from modelyard.services.operations import operation
from modelyard.storage.content.objects import StoredTree
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import datasets_repository as repo

Progress = Callable[[int], None]


class Datasets(UseCase):
    @operation(Permission.CONTRIBUTE)
    def register_dataset(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
        progress: Progress | None = None,
    ) -> DatasetVersion:
        """Store a file, folder or ``.yard`` pointer's data as the next version of ``name``.

        Content first (idempotent), then one transaction for the row and its audit event,
        so a failure leaves at worst an unreferenced object.
        """
        who = self._actor(actor)
        check_model_name(name)
        clean_tags = check_tags(dict(tags or {}))
        source = os.fspath(path)
        stored = self._store_dataset(source, progress)
        artifact_name = "" if stored.kind == "dir" else Path(source).name
        if pointers.is_pointer_path(artifact_name):
            artifact_name = pointers.data_path(artifact_name)
        now = self.clock()
        with self.db.transaction() as conn:
            dataset_id, number = repo.allocate_version(conn, name, who.user, now)
            values = dict(digest=stored.digest, kind=stored.kind, artifact_name=artifact_name,
                          size=stored.size, file_count=stored.file_count, source=source,
                          description=description, tags=clean_tags)
            repo.insert_version(conn, dataset_id=dataset_id, version=number,
                                created_by=who.user,
                                created_at=now, **values)
            audit.record(conn, at=now, actor=who, action="dataset.register",
                         after={"dataset": name, "version": number, **values})
        return self.get_dataset(name, number)

    def _store_dataset(self, source: str, progress: Progress | None) -> StoredTree:
        if pointers.is_pointer_path(source) and os.path.isfile(source):
            with Workspace.find(os.path.dirname(os.path.abspath(source))) as workspace:
                tracked = workspace.read_pointer(workspace.relpath(source))
                found = tracked.pointer
                needed = object_digests(workspace.cache, [tracked])
                copy_objects(workspace.cache, self.store, needed, meter=BytesMeter(progress))
            return StoredTree(found.digest, found.kind, found.size, found.file_count, None)
        if not os.path.exists(source):
            raise InvalidInput(f"dataset path {source!r} does not exist", path=source)
        ws = Workspace.find_optional(os.path.dirname(os.path.abspath(source)))
        try:
            return self.store.put_tree(source, progress=progress,
                                       cache=ws.state if ws is not None else None)
        finally:
            if ws is not None:
                ws.close()

    @operation(Permission.READ)
    def get_dataset(self, name_or_uri: str, version: int | str | None = None) -> DatasetVersion:
        """``get_dataset("datasets:/customers/4")`` or ``get_dataset("customers", 4)``;
        without a version, the latest."""
        if is_dataset_uri(name_or_uri):
            name, number = parse_dataset_uri(name_or_uri)
        else:
            ref = "latest" if version is None else version  # 0 is refused, not "latest"
            name, number = parse_dataset_uri(f"datasets:/{name_or_uri}/{ref}")
        with self.db.read() as conn:
            row = repo.find_version(conn, name, number)
            if row is None:
                if not repo.dataset_exists(conn, name):
                    raise NotFound(f"dataset {name!r} not found",
                                   hint="see 'modelyard data list'", name=name)
                raise NotFound(f"version {number} of dataset {name!r} not found",
                               name=name, version=number)
        return _to_dataset(row)

    @operation(Permission.READ)
    def list_datasets(
        self, name: str | None = None, *, max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page[DatasetVersion]:
        """Every registered version (of one dataset when ``name`` is given), by name and number."""
        if name is not None:
            check_model_name(name)
        limit, cursor = check_max_results(max_results), decode_token(page_token, "datasets", 2)
        with self.db.read() as conn:
            return collect(lambda after, n: [
                _to_dataset(r) for r in repo.list_versions(conn, name, cursor=after, limit=n)],
                lambda d: (d.name, d.version), limit, cursor, kind="datasets")

    @operation(Permission.READ)
    def download_dataset(
        self, uri: str, dest: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> Path:
        """Write a dataset version under ``dest``, every byte verified; no git needed."""
        found = self.get_dataset(uri)
        target = Path(dest)
        if target.exists() and not target.is_dir():
            raise InvalidInput(f"destination {str(dest)!r} is a file, not a folder")
        target.mkdir(parents=True, exist_ok=True)
        path = self.store.materialize(found.digest, "dir" if found.kind == "dir" else "file",
                                      target, filename=found.artifact_name or None,
                                      progress=progress)
        return Path(path)

    @operation(Permission.READ)
    def resolve_dataset_input(self, ref: str) -> dict[str, Any]:
        """Digest, size and file count of a dataset input, for lineage.

        ``ref`` is a ``datasets:/NAME/V`` address, a ``.yard`` pointer file or a path to
        data (hashed through the workspace's state cache when there is one; it need not
        be stored). ``name``/``version`` name the registered version holding that exact
        content, or are None.
        """
        if is_dataset_uri(ref):
            found = self.get_dataset(ref)
            return _lineage(found.digest, found.size, found.file_count, ref, found)
        path = os.fspath(ref)
        if not os.path.exists(path):
            raise InvalidInput(f"dataset input {path!r} is neither an existing path nor a "
                               "datasets:/NAME/VERSION address", path=path)
        if pointers.is_pointer_path(path) and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                described = pointers.parse(f.read(), path)
        else:
            ws = Workspace.find_optional(os.path.dirname(os.path.abspath(path)))
            try:
                described = (describe(path, ws.state, ws.link_roots, ws.dirs) if ws is not None
                             else describe(path, None))
            finally:
                if ws is not None:
                    ws.close()
        with self.db.read() as conn:
            row = repo.latest_with_digest(conn, described.digest)
        registered = _to_dataset(row) if row is not None else None
        return _lineage(described.digest, described.size, described.file_count, path, registered)


def _lineage(digest: str, size: int, file_count: int, source: str,
             registered: DatasetVersion | None) -> dict[str, Any]:
    return {"digest": digest, "size": size, "file_count": file_count, "source": source,
            "name": registered.name if registered else None,
            "version": registered.version if registered else None}


def _to_dataset(row: Any) -> DatasetVersion:
    return DatasetVersion(
        name=row.name, version=int(row.version), digest=row.digest, kind=row.kind,
        artifact_name=row.artifact_name, size=int(row.size), file_count=int(row.file_count),
        source=row.source, description=row.description or "", tags=dict(row.tags or {}),
        created_by=row.created_by, created_at=row.created_at,
    )
