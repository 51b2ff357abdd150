"""What the registry hands out: plain, immutable records, encoded and decoded by
``domain.codec`` (``to_dict`` is its JSON-ready form).

Field names here are the contract shared by the Python API, ``--json`` CLI output and
the REST API, so they are spelled once, in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelyard.domain.codec import Record


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class RegisteredModel(Record):
    name: str
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    latest_version: int | None
    production_version: int | None
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion(Record):
    name: str
    version: int
    digest: str
    artifact_kind: str  # "file" or "dir"
    artifact_name: str  # the file name of a single-file artifact; "" for a directory
    size: int
    file_count: int
    stage: str
    aliases: list[str]
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    description: str
    lineage: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime
    computed = ("uri",)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def filter_context(self) -> dict[str, Any]:
        """The view the expression language evaluates (searches and policy gates)."""
        return {
            "name": self.name,
            "version": self.version,
            "stage": self.stage,
            "description": self.description,
            "digest": self.digest,
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "aliases": list(self.aliases),
            "datasets": list(self.lineage.get("datasets", [])),
            "run_id": self.lineage.get("run_id"),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class AuditEvent(Record):
    seq: int
    at: datetime
    actor: str
    action: str
    model: str | None
    version: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    comment: str
    prev_hash: str
    hash: str
    via: str | None = None  # the admin who acted on behalf of ``actor``, if anyone


@dataclass(frozen=True)
class HistoryState(Record):
    """A model's lifecycle as of a moment, rebuilt from its audit events."""

    name: str
    at: datetime | None
    production: int | None
    stages: dict[int, str]
    aliases: dict[str, int]
    deleted: list[int]
    events: list[AuditEvent]


@dataclass(frozen=True)
class GarbageReport(Record):
    """``gc``: objects of the registry's store that nothing references any more, past the
    grace period: removed, or (a dry run) that would be."""

    removed: list[str]
    removed_bytes: int
    kept: int  # objects something references (with a folder's files and a file's chunks)
    young: int  # unreferenced but younger than the grace period: an upload may be under way
    dry_run: bool


@dataclass(frozen=True)
class VerifyReport(Record):
    """``verify``: damage (fails it), what ``--repair`` put back, and temporary files left
    by killed writers (reported, never a failure: ``modelyard cleanup`` removes them)."""

    checked: int
    corrupt: list[str]
    missing: list[str]
    repaired: list[str] = field(default_factory=list)
    leftover_count: int = 0
    leftover_bytes: int = 0
    owners: dict[str, list[str]] = field(default_factory=dict)
    """Damaged digest → what holds it: ``models:/fraud/3``, or ``models:/fraud/3 (a.bin)``
    for a file of a stored folder."""
    computed = ("ok",)

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing
