"""The state changes several use cases make: a version's stage, production's hand-over, aliases.

Each writes its row and its audit event in the caller's transaction. Only lifecycle and
governance call the stage moves, and lifecycle asks governance first; a test keeps every
write of the ``stage`` column in this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from modelyard.domain.principal import Actor
from modelyard.domain.stages import Stage
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import repository as repo


def set_stage(
    conn: Connection, name: str, row: Any, target: Stage, who: Actor, now: datetime,
    action: str, comment: str,
) -> None:
    repo.update_version(conn, row.id, stage=target.value, updated_at=now)
    audit.record(conn, at=now, actor=who, action=action, model=name,
                 version=int(row.version), before={"stage": row.stage},
                 after={"stage": target.value}, comment=comment)


def archive_production(
    conn: Connection, model: Any, who: Actor, now: datetime, reason: str
) -> None:
    """Archive the model's current production version, if it has one."""
    current = repo.latest_in_stage(conn, model.id, "production")
    if current is not None:
        set_stage(conn, model.name, current, Stage.ARCHIVED, who, now, "version.transition",
                  reason)


def move_alias(
    conn: Connection, model_id: int, name: str, alias: str, version_id: int, number: int,
    who: Actor, now: datetime,
) -> None:
    current = repo.find_by_alias(conn, model_id, alias)
    repo.set_alias(conn, model_id=model_id, alias=alias, version_id=version_id,
                   actor=who.user, at=now)
    audit.record(conn, at=now, actor=who, action="alias.set", model=name, version=number,
                 before={"alias": alias, "version": int(current.version) if current else None},
                 after={"alias": alias, "version": number})


def delete_alias(
    conn: Connection, model_id: int, name: str, alias: str, number: int, who: Actor,
    now: datetime,
) -> None:
    repo.delete_alias(conn, model_id, alias)
    audit.record(conn, at=now, actor=who, action="alias.delete", model=name, version=number,
                 before={"alias": alias, "version": number},
                 after={"alias": alias, "version": None})
