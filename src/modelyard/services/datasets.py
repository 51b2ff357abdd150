"""Named, numbered dataset versions (``datasets:/NAME/3``) and dataset inputs for lineage.

A registered version is content in the registry's object store plus one row; the
number comes from the dataset's counter row, bumped inside the insert's transaction
exactly like model versions. ``dataset_input`` turns a dataset input (a ``datasets:/``
address, or data the content plane described by digest) into what lineage records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard.domain.content import DataInput, StoredContent
from modelyard.domain.datasets import DatasetVersion, is_dataset_uri, parse_dataset_uri
from modelyard.domain.names import check_model_name, check_tags
from modelyard.domain.paging import Page, check_max_results, collect, decode_token
from modelyard.domain.principal import Permission
from modelyard.errors import InvalidInput, NotFound
from modelyard.services.base import UseCase
from modelyard.services.operations import operation
from modelyard.storage.content.presence import check_present
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import datasets_repository as repo


class Datasets(UseCase):
    @operation(Permission.CONTRIBUTE)
    def create_dataset_version(
        self,
        name: str,
        content: StoredContent,
        *,
        source: str = "",
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> DatasetVersion:
        """Record content already in the store as the next version of dataset ``name``.

        ``content`` is checked against the store first; the row and its audit event go in
        one transaction. ``source`` labels where the data came from (a path, a pointer).
        ``register_dataset`` is the call that starts from a path.
        """
        who = self._actor(actor)
        check_model_name(name)
        clean_tags = check_tags(dict(tags or {}))
        check_present(self.store, content)
        now = self.clock()
        with self.db.transaction() as conn:
            dataset_id, number = repo.allocate_version(conn, name, who.user, now)
            values = dict(digest=content.digest, kind=content.kind,
                          artifact_name=content.name, size=content.size,
                          file_count=content.file_count, source=source,
                          description=description, tags=clean_tags)
            repo.insert_version(conn, dataset_id=dataset_id, version=number,
                                created_by=who.user, created_at=now, **values)
            audit.record(conn, at=now, actor=who, action="dataset.register",
                         after={"dataset": name, "version": number, **values})
        return self.get_dataset(name, number)

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

    def versions_before(self, found: DatasetVersion) -> list[DatasetVersion]:
        """The versions of ``found``'s dataset numbered below it, oldest first."""
        with self.db.read() as conn:
            return [d for d in map(_to_dataset, repo.list_versions(conn, found.name))
                    if d.version < found.version]

    @operation(Permission.READ)
    def dataset_input(self, ref: str | DataInput) -> dict[str, Any]:
        """What lineage records of a dataset input: digest, size, file count, source.

        ``ref`` is a ``datasets:/NAME/V`` address or data described by digest (the content
        plane describes paths and pointers: ``resolve_dataset_input``). ``name``/``version``
        name the registered version holding that exact content, or are None.
        """
        if isinstance(ref, str):
            if not is_dataset_uri(ref):
                raise InvalidInput(f"dataset input {ref!r} is not a datasets:/NAME/VERSION "
                                   "address", hint="pass a path through resolve_dataset_input")
            found = self.get_dataset(ref)
            return _lineage(found.digest, found.size, found.file_count, ref, found)
        with self.db.read() as conn:
            row = repo.latest_with_digest(conn, ref.digest)
        registered = _to_dataset(row) if row is not None else None
        return _lineage(ref.digest, ref.size, ref.file_count, ref.source, registered)


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
