"""Replay audit events into a model's lifecycle state.

``history --at`` and the state-machine tests both rely on this: the events alone must be
enough to say which version held production, and which aliases pointed where, at any time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from modelyard.domain.entities import AuditEvent, HistoryState


def replay(name: str, events: Iterable[AuditEvent], at: datetime | None = None) -> HistoryState:
    stages: dict[int, str] = {}
    aliases: dict[str, int] = {}
    deleted: list[int] = []
    seen: list[AuditEvent] = []
    for event in events:
        if at is not None and event.at > at:
            break
        seen.append(event)
        after = event.after or {}
        if event.version is not None and "stage" in after:
            stages[event.version] = str(after["stage"])
        if "alias" in after:
            target = after.get("version")
            if target is None:
                aliases.pop(str(after["alias"]), None)
            else:
                aliases[str(after["alias"])] = int(target)
        if event.action == "version.delete" and event.version is not None:
            deleted.append(event.version)
            stages.pop(event.version, None)
    production = next((v for v, s in stages.items() if s == "production"), None)
    return HistoryState(name, at, production, stages, aliases, deleted, seen)
