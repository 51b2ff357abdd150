"""Experiment tracking records: experiments, runs, metric points, run artifacts.

Like ``domain.entities``, these spell the field names shared by the Python API, ``--json``
output and (later) REST, and ``Run.filter_context`` is the view the filter language reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from modelyard.domain.codec import Record
from modelyard.domain.entities import _iso
from modelyard.errors import InvalidInput

RUN_SCHEME = "runs:/"
RUN_ID_RE = re.compile(r"[0-9a-f]{32}")  # with fullmatch: `$` passes a trailing newline
RUN_ROOTS: frozenset[str] = frozenset(
    {"run_id", "name", "experiment", "status", "created_by", "start_time", "end_time",
     "git_commit", "datasets", "params", "metrics", "tags"}
)  # fmt: skip
RUN_MAP_ROOTS: frozenset[str] = frozenset({"params", "metrics", "tags"})


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        raise InvalidInput(f"invalid run id {run_id!r}: expected 32 hex digits",
                           hint="see 'modelyard runs list'")
    return run_id


def parse_run_uri(uri: str) -> tuple[str, str]:
    """``runs:/<run_id>/<path>`` → (run id, artifact path)."""
    if not is_run_uri(uri):
        raise InvalidInput(f"invalid run address {uri!r}: expected runs:/RUN_ID/PATH")
    run_id, _, path = uri[len(RUN_SCHEME):].strip("/").partition("/")
    if not path:
        raise InvalidInput(f"invalid run address {uri!r}: add the artifact path, "
                           "e.g. runs:/RUN_ID/model")
    return check_run_id(run_id), path.strip("/")


def is_run_uri(text: object) -> bool:
    return isinstance(text, str) and text.startswith(RUN_SCHEME)


@dataclass(frozen=True)
class Experiment(Record):
    name: str
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: datetime
    run_count: int = 0


@dataclass(frozen=True)
class MetricPoint(Record):
    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True)
class RunArtifact(Record):
    path: str
    digest: str
    kind: str  # "file" or "dir"
    artifact_name: str
    size: int
    file_count: int
    flavor: str | None


@dataclass(frozen=True)
class Run(Record):
    run_id: str
    experiment: str
    name: str
    status: str
    created_by: str
    start_time: datetime
    end_time: datetime | None
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    git: dict[str, Any] | None
    environment: dict[str, Any]
    datasets: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[RunArtifact] = field(default_factory=list)
    computed = ("git_commit",)

    @property
    def git_commit(self) -> str | None:
        return (self.git or {}).get("commit")

    def filter_context(self) -> dict[str, Any]:
        """The view ``runs list --filter`` evaluates (the same language as versions)."""
        return {
            "run_id": self.run_id,
            "name": self.name,
            "experiment": self.experiment,
            "status": self.status,
            "created_by": self.created_by,
            "start_time": _iso(self.start_time),
            "end_time": _iso(self.end_time),
            "git_commit": self.git_commit,
            "datasets": list(self.datasets),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }

    def environment_summary(self) -> dict[str, Any]:
        """What a version's lineage keeps of the environment (packages stay on the run)."""
        env = self.environment
        return {
            "python": env.get("python"),
            "platform": env.get("platform"),
            "user": env.get("user"),
            "package_count": len(env.get("packages") or {}),
        }
