"""How two model versions differ, as pure comparisons of what the registry recorded.

Every section of a diff has the same shape (``added``/``removed``/``changed``), so the CLI
prints them with one loop and scripts read them with one rule. Metrics add a ``delta``
(``to - from``) when both sides are numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelyard.domain.codec import Record


def _change(old: Any, new: Any) -> dict[str, Any]:
    return {"from": old, "to": new}


def _metric_change(old: float, new: float) -> dict[str, Any]:
    return {"from": old, "to": new, "delta": new - old}


def diff_mappings(
    old: Mapping[str, Any], new: Mapping[str, Any], change: Callable[[Any, Any], Any] = _change
) -> dict[str, Any]:
    """Keys added, removed and changed (``{"from", "to"}``) going from ``old`` to ``new``."""
    return {
        "added": {k: new[k] for k in sorted(new.keys() - old.keys())},
        "removed": {k: old[k] for k in sorted(old.keys() - new.keys())},
        "changed": {
            k: change(old[k], new[k]) for k in sorted(old.keys() & new.keys()) if old[k] != new[k]
        },
    }


def diff_metrics(old: Mapping[str, float], new: Mapping[str, float]) -> dict[str, Any]:
    """Like ``diff_mappings``, with a ``delta`` on every metric present on both sides."""
    return diff_mappings(old, new, _metric_change)


def diff_datasets(
    old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Datasets compare by digest: the same bytes under another path are the same data."""
    a = {d["digest"]: dict(d) for d in old}
    b = {d["digest"]: dict(d) for d in new}
    return {
        "added": [b[k] for k in sorted(b.keys() - a.keys())],
        "removed": [a[k] for k in sorted(a.keys() - b.keys())],
        "unchanged": sorted(a.keys() & b.keys()),
    }


@dataclass(frozen=True)
class VersionDiff(Record):
    name: str
    from_version: int
    to_version: int
    from_digest: str
    to_digest: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    datasets: dict[str, Any]
    code: dict[str, Any]
    packages: dict[str, Any]
    files: dict[str, list[str]]
    computed = ("identical_content",)

    @property
    def identical_content(self) -> bool:
        return self.from_digest == self.to_digest


@dataclass(frozen=True)
class Lineage(Record):
    """Where a version came from (run, experiment, data, code, environment, parent) and
    which versions came from it."""

    name: str
    version: int
    digest: str
    created_by: str
    created_at: datetime
    run: dict[str, Any] | None
    experiment: str | None
    params: dict[str, Any]
    metrics: dict[str, float]
    datasets: list[dict[str, Any]]
    git: dict[str, Any] | None
    environment: dict[str, Any] | None
    parent: dict[str, Any] | None
    descendants: list[dict[str, Any]]
    model: dict[str, Any] | None  # the flavor descriptor: flavor, signature, input example
