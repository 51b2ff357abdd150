"""What ``audit verify`` found: the chain check, state/log disagreements and a checkpoint check.

A database administrator can recompute every hash, so a valid chain alone proves little. Two
further checks make edits visible: replaying the log and comparing it with the tables (an
edit of ``model_versions`` that the log does not explain), and an external signed checkpoint
(a rewritten or truncated log no longer extends it). This module holds the pure parts: the
facts both sides are reduced to, their comparison, and the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from modelyard.domain.codec import Record
from modelyard.domain.policy import ChainReport

Subject = tuple[str, str, int | None]
"""(kind, name, number): ("model", "fraud", None), ("version", "fraud", 2),
("policy", "fraud", 1), ("dataset", "iris", 3), ("user", "ana", None), ("token", ID, None)."""
Facts = dict[Subject, dict[str, Any]]
"""Per subject, field → value. The log side holds only the fields its events recorded."""

MISSING = "<missing>"
# Fields the log has always recorded, so a value the state has and the log lacks is an
# alarm; any other field is compared only when the log recorded it (old registries' events
# carry fewer fields and must not raise false alarms).
ALWAYS_LOGGED = ("exists",)


def _always_logged(name: str) -> bool:
    return name in ALWAYS_LOGGED or name.startswith("@")


@dataclass(frozen=True)
class Disagreement(Record):
    """One field on which the current tables and the replayed audit log differ."""

    kind: str
    name: str
    number: int | None
    field: str
    state: Any
    log: Any
    computed = ("message",)

    def describe(self) -> str:
        subject = f"{self.kind} {self.name!r}" if self.kind in (
            "model", "dataset", "user", "token") else (
            f"model {self.name!r} {self.kind} {self.number}")
        if self.kind == "dataset" and self.number is not None:
            subject += f" version {self.number}"
        if self.field == "exists":
            return (f"{subject}: exists in the tables but the audit log never recorded it"
                    if self.state else
                    f"{subject}: the audit log records it but the tables have no such row")
        return (f"{subject}: {self.field}: state says {_show(self.state)}, "
                f"log says {_show(self.log)}")

    message = property(describe)  # what the JSON form shows


def _show(value: Any) -> str:
    return "nothing" if value is None or value == MISSING else repr(value)


def compare(state: Facts, log: Facts) -> list[Disagreement]:
    """Every field on which ``state`` and ``log`` disagree, in a stable order."""
    found: list[Disagreement] = []
    for subject in sorted(state.keys() | log.keys(), key=_order):
        have, said = state.get(subject), log.get(subject)
        kind, name, number = subject
        if have is None or said is None:
            found.append(Disagreement(kind, name, number, "exists",
                                      have is not None, said is not None))
            continue
        names = said.keys() | {k for k in have if _always_logged(k)}
        for key in sorted(names):
            left, right = have.get(key, MISSING), said.get(key, MISSING)
            if key.startswith("@"):  # an alias that is absent is None on both sides
                left, right = have.get(key), said.get(key)
            if not _same(left, right):
                found.append(Disagreement(kind, name, number, key, left, right))
    return found


def _same(left: Any, right: Any) -> bool:
    """Equal, a NaN metric equal to NaN: the same fact on both sides, though ``nan != nan``
    (and containers compare their NaNs as equal only when they are one object)."""
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_same, left, right))
    return bool(left == right)


def _order(subject: Subject) -> tuple[str, str, int]:
    kind, name, number = subject
    return name, kind, number if number is not None else -1


@dataclass(frozen=True)
class CheckpointCheck(Record):
    """Whether the current log still extends a signed checkpoint."""

    seq: int
    hash: str
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class AuditReport(ChainReport):
    """The chain check plus the replay comparison and, when asked for, a checkpoint check."""

    disagreements: tuple[Disagreement, ...] = field(default=())
    checkpoint: CheckpointCheck | None = None
    computed = ("chain_ok", "ok")

    @property
    def chain_ok(self) -> bool:
        return self.bad_seq is None

    @property
    def ok(self) -> bool:
        return (self.chain_ok and not self.disagreements
                and (self.checkpoint is None or self.checkpoint.ok))

    def problems(self) -> list[str]:
        """One line per problem, chain first."""
        lines = [] if self.chain_ok else [f"audit chain broken at event {self.bad_seq}: "
                                          f"{self.reason}"]
        if self.checkpoint is not None and not self.checkpoint.ok:
            lines.append(f"checkpoint at event {self.checkpoint.seq}: {self.checkpoint.reason}")
        lines += [d.describe() for d in self.disagreements]
        return lines
