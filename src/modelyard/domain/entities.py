"""What the registry hands out: plain, immutable records with JSON-ready ``to_dict``.

Field names here are the contract shared by the Python API, ``--json`` CLI output and
the REST API, so they are spelled once, in this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class RegisteredModel:
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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = _iso(self.created_at)
        data["updated_at"] = _iso(self.updated_at)
        return data


@dataclass(frozen=True)
class ModelVersion:
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

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = _iso(self.created_at)
        data["updated_at"] = _iso(self.updated_at)
        data["uri"] = self.uri
        return data

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
class AuditEvent:
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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = _iso(self.at)
        return data


@dataclass(frozen=True)
class HistoryState:
    """A model's lifecycle as of a moment, rebuilt from its audit events."""

    name: str
    at: datetime | None
    production: int | None
    stages: dict[int, str]
    aliases: dict[str, int]
    deleted: list[int]
    events: list[AuditEvent]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "at": _iso(self.at),
            "production": self.production,
            "stages": {str(k): v for k, v in sorted(self.stages.items())},
            "aliases": dict(sorted(self.aliases.items())),
            "deleted": list(self.deleted),
            "events": [e.to_dict() for e in self.events],
        }


@dataclass(frozen=True)
class VerifyReport:
    """``verify``: damage (fails it), what ``--repair`` put back, and temporary files left
    by killed writers (reported, never a failure: ``modelyard cleanup`` removes them)."""

    checked: int
    corrupt: list[str]
    missing: list[str]
    repaired: list[str] = field(default_factory=list)
    leftover_count: int = 0
    leftover_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}
