"""Lineage: which run, experiment, data, code and parent produced a version, and diffs.

A version's provenance is frozen into ``ModelVersion.lineage`` when it is registered (run
id, experiment, params, metrics, git, environment summary, datasets, parent), so it stays
true even if tags on the run change later. The run itself keeps the full package list,
which ``diff`` reads to name the packages that differ.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from modelyard.domain.content import StoredContent, content_kind
from modelyard.domain.entities import ModelVersion
from modelyard.domain.lineage import (
    Lineage,
    VersionDiff,
    diff_datasets,
    diff_mappings,
    diff_metrics,
)
from modelyard.domain.principal import Permission
from modelyard.domain.refs import VersionRef, is_model_uri, parse_model_uri, parse_ref
from modelyard.domain.runs import Run, parse_run_uri
from modelyard.errors import InvalidInput, NotFound
from modelyard.flavors import DESCRIPTOR, read_descriptor
from modelyard.services.base import UseCase
from modelyard.services.operations import operation
from modelyard.services.tracking import load_runs
from modelyard.storage.content.manifest import Entry, Manifest
from modelyard.storage.content.manifest import diff as diff_manifests
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import tracking_repository as track
from modelyard.storage.sql.database import Database


class Lineages(UseCase):
    """What produced a version (frozen at registration) and how two versions differ."""

    @operation(Permission.READ)
    def lineage(self, name: str, version: str | int | None = None) -> Lineage:
        """Version → run → experiment, with params, metrics, data, code, environment,
        parent and the versions registered with this one as their parent."""
        with self.db.read() as conn:
            found = self._version(conn, name, version)
            run = self._lineage_run(conn, found)
            names = {named for named, _, _ in audit.model_spans(conn, found.name)}
            rows = track.children_of(conn, names, found.version, found.digest)
            descendants = [{"name": v.name, "version": v.version, "digest": v.digest}
                           for v in self._versions(conn, rows)]
        recorded = found.lineage
        run_view = None
        if run is not None:
            run_view = {k: v for k, v in run.to_dict().items() if k != "environment"}
        return Lineage(
            name=found.name, version=found.version, digest=found.digest,
            created_by=found.created_by, created_at=found.created_at,
            run=run_view, experiment=recorded.get("experiment"), params=found.params,
            metrics=found.metrics, datasets=list(recorded.get("datasets") or []),
            git=recorded.get("git"), environment=recorded.get("environment"),
            parent=recorded.get("parent"), descendants=descendants,
            model=self.model_descriptor(found),
        )

    @operation(Permission.READ)
    def diff(self, name: str, v1: str | int, v2: str | int) -> VersionDiff:
        """How ``v2`` differs from ``v1``: params, metrics (with deltas), datasets, code
        commit, packages and files (by digest)."""
        with self.db.read() as conn:
            a, b = self._version(conn, name, v1), self._version(conn, name, v2)
            run_a, run_b = self._lineage_run(conn, a), self._lineage_run(conn, b)
        files = diff_manifests(self._manifest(a), self._manifest(b))
        commit_a, commit_b = (_commit(v) for v in (a, b))
        return VersionDiff(
            name=a.name, from_version=a.version, to_version=b.version,
            from_digest=a.digest, to_digest=b.digest,
            params=diff_mappings(a.params, b.params),
            metrics=diff_metrics(a.metrics, b.metrics),
            datasets=diff_datasets(a.lineage.get("datasets") or [],
                                   b.lineage.get("datasets") or []),
            code={"from": commit_a, "to": commit_b, "changed": commit_a != commit_b},
            packages=diff_mappings(_packages(run_a), _packages(run_b)),
            files={"added": files.added, "removed": files.removed, "changed": files.modified},
        )

    @operation(Permission.READ)
    def model_descriptor(self, version: ModelVersion) -> dict[str, Any] | None:
        """The flavor descriptor saved with a logged model (read from the store, verified)."""
        if version.artifact_kind != "dir":
            return None
        entry = self.store.get_manifest(version.digest).by_path.get(DESCRIPTOR)
        if entry is None:
            return None
        doc = read_descriptor(self.store.get_bytes(entry.digest))
        keep = ("flavor", "executes_code_on_load", "signature", "input_example")
        return {k: doc.get(k) for k in keep}

    def _version(self, conn: Connection, name: str, ref: str | int | None) -> ModelVersion:
        model, row = self._resolve(conn, self._ref(name, ref))
        return self._versions(conn, [row], model.name)[0]

    def _lineage_run(self, conn: Connection, version: ModelVersion) -> Run | None:
        run_id = version.lineage.get("run_id")
        row = track.find_run(conn, run_id) if isinstance(run_id, str) else None
        return load_runs(conn, [row])[0] if row is not None else None

    def _manifest(self, version: ModelVersion) -> Manifest:
        if version.artifact_kind == "dir":
            return self.store.get_manifest(version.digest)
        return Manifest([Entry(version.artifact_name, version.digest, version.size)])


def _commit(version: ModelVersion) -> str | None:
    git = version.lineage.get("git")
    return git.get("commit") if isinstance(git, dict) else None


def _packages(run: Run | None) -> dict[str, Any]:
    return dict(run.environment.get("packages") or {}) if run is not None else {}


# -- registering with provenance (used by Catalog.create_version) -------------------------
def run_artifact_source(
    db: Database, uri: str, run: str | None = None
) -> tuple[StoredContent, str]:
    """What ``runs:/<run_id>/<path>`` holds, and the run's id.

    The content is already in the store (the run logged it), so registering it copies
    nothing. ``run``, when given, must be the run the address names.
    """
    run_id, path = parse_run_uri(uri)
    if run is not None and run != run_id:
        raise InvalidInput(f"{uri} belongs to run {run_id}, not to run {run}")
    with db.read() as conn:
        row = track.find_artifact(conn, run_id, path)
    if row is None:
        raise NotFound(f"run {run_id} has no artifact {path!r}",
                       hint=f"see 'modelyard runs show {run_id}'", run_id=run_id, path=path)
    return StoredContent(row.digest, content_kind(row.kind), int(row.size), int(row.file_count),
                         row.artifact_name), run_id


def provenance(
    service: UseCase, conn: Connection, *, run: str | None, parent: VersionRef | None
) -> dict[str, Any]:
    """The lineage keys recorded for a new version made by ``run`` from ``parent``."""
    recorded: dict[str, Any] = {}
    if run is not None:
        row = track.find_run(conn, run)
        if row is None:
            raise NotFound(f"run {run} not found", hint="see 'modelyard runs list'", run_id=run)
        found = load_runs(conn, [row])[0]
        recorded.update(
            run_id=found.run_id, run_name=found.name, experiment=found.experiment,
            params=found.params, metrics=found.metrics, git=found.git,
            environment=found.environment_summary(), datasets=found.datasets,
        )
    if parent is not None:
        model, row = service._resolve(conn, parent)
        recorded["parent"] = {"name": model.name, "version": int(row.version),
                              "digest": row.digest}
    return recorded


def parse_parent(text: str) -> VersionRef:
    """``NAME/VERSION`` (any version reference) or a ``models:/`` address."""
    if is_model_uri(text):
        return parse_model_uri(text)
    name, sep, ref = text.rpartition("/")
    if not sep or not name:
        raise InvalidInput(
            f"invalid parent {text!r}: expected NAME/VERSION or models:/NAME/VERSION")
    return parse_ref(name, ref)
