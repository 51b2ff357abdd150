"""Stages, rollback, aliases and history: the governed part of a version's life.

Each change is one transaction holding the model's row lock; promotion archives the
previous production in that same transaction, and the partial unique index on
``stage = 'production'`` refuses a second production even if this code were wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from modelyard.domain.entities import AuditEvent, HistoryState, ModelVersion
from modelyard.domain.history import replay
from modelyard.domain.names import check_alias, check_version_number
from modelyard.domain.stages import ROLLBACK_FROM, Stage, check_transition, parse_stage
from modelyard.domain.times import as_utc
from modelyard.errors import InvalidTransition, NotFound
from modelyard.services.catalog import CatalogService
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import repository as repo


class LifecycleService(CatalogService):
    def transition(
        self, name: str, version: int | str, stage: str | Stage, *, comment: str = "",
        actor: str | None = None,
    ) -> ModelVersion:
        """Move a version along the stage table; promoting archives the old production."""
        who, now, target = self._actor(actor), self.clock(), parse_stage(stage)
        with self.db.transaction() as conn:
            model, row = self._resolve(conn, self._ref(name, version))
            repo.lock_model(conn, model.id, now)
            subject = f"version {row.version} of {name!r}"
            check_transition(Stage(row.stage), target, subject=subject)
            self._before_transition(conn, model, row, target, who)
            if target is Stage.PRODUCTION:
                self._archive_production(conn, model, who, now, f"superseded by {row.version}")
            self._set_stage(conn, name, row, target, who, now, "version.transition", comment)
        return self.get_version(name, int(row.version))

    def _before_transition(
        self, conn: Connection, model: Any, row: Any, target: Stage, actor: str
    ) -> None:
        """Hook for governance: refuse a move the model's policy does not allow."""

    def rollback(
        self, name: str, *, to: int | str | None = None, comment: str = "",
        actor: str | None = None,
    ) -> ModelVersion:
        """Archive the current production and restore the one that held production before it."""
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            model = self._model(conn, name)
            repo.lock_model(conn, model.id, now)
            current = repo.latest_in_stage(conn, model.id, "production")
            former = _former_productions(audit.list_events(conn, model=name))
            if to is None:
                candidates = [v for v in former if not current or v != current.version]
                target = next((r for v in candidates
                               if (r := repo.find_version(conn, model.id, v)) is not None
                               and r.stage == ROLLBACK_FROM), None)
                if target is None:
                    raise InvalidTransition(
                        f"model {name!r} has no archived version that held production before"
                    )
            else:
                number = check_version_number(to)
                target = repo.find_version(conn, model.id, number)
                if target is None:
                    raise NotFound(f"version {number} of model {name!r} not found")
                if number not in former or target.stage != ROLLBACK_FROM:
                    raise InvalidTransition(
                        f"cannot roll back {name!r} to version {number}: only an archived "
                        "version that once held production can be restored "
                        f"(it is {target.stage}"
                        f"{'' if number in former else ' and never held production'})"
                    )
            self._before_rollback(conn, model, target, who)
            self._archive_production(conn, model, who, now, f"rolled back to {target.version}")
            self._set_stage(conn, name, target, Stage.PRODUCTION, who, now, "version.rollback",
                            comment)
        return self.get_version(name, int(target.version))

    def _before_rollback(self, conn: Connection, model: Any, row: Any, actor: str) -> None:
        """Hook for governance (e.g. a policy that makes rollback need approval)."""

    def _archive_production(
        self, conn: Connection, model: Any, who: str, now: datetime, reason: str
    ) -> None:
        current = repo.latest_in_stage(conn, model.id, "production")
        if current is not None:
            self._set_stage(conn, model.name, current, Stage.ARCHIVED, who, now,
                            "version.transition", reason)

    def _set_stage(
        self, conn: Connection, name: str, row: Any, target: Stage, who: str, now: datetime,
        action: str, comment: str,
    ) -> None:
        repo.update_version(conn, row.id, stage=target.value, updated_at=now)
        audit.record(conn, at=now, actor=who, action=action, model=name,
                     version=int(row.version), before={"stage": row.stage},
                     after={"stage": target.value}, comment=comment)

    # -- aliases ------------------------------------------------------------------------
    def set_alias(
        self, name: str, alias: str, version: int | str, *, actor: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at a version (moving it if it pointed elsewhere)."""
        who, now = self._actor(actor), self.clock()
        check_alias(alias)
        with self.db.transaction() as conn:
            model, row = self._resolve(conn, self._ref(name, version))
            self._move_alias(conn, model.id, name, alias, row.id, int(row.version), who, now)
        return self.get_version(name, int(row.version))

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> None:
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            model = self._model(conn, name)
            current = repo.find_by_alias(conn, model.id, check_alias(alias))
            if current is None:
                raise NotFound(f"alias @{alias} of model {name!r} not found")
            repo.delete_alias(conn, model.id, alias)
            audit.record(conn, at=now, actor=who, action="alias.delete", model=name,
                         version=int(current.version),
                         before={"alias": alias, "version": int(current.version)},
                         after={"alias": alias, "version": None})

    # -- history ------------------------------------------------------------------------
    def history(self, name: str, at: datetime | None = None) -> HistoryState:
        """Stage and alias changes of ``name``; with ``at``, the state as it was then."""
        with self.db.read() as conn:
            self._model(conn, name)
            events = audit.list_events(conn, model=name)
        return replay(name, events, as_utc(at) if at is not None else None)



def _former_productions(events: list[AuditEvent]) -> list[int]:
    """Versions that held production, most recent first, each once."""
    seen: list[int] = []
    for event in reversed(events):
        held = (event.after or {}).get("stage") == "production"
        if held and event.version is not None and event.version not in seen:
            seen.append(event.version)
    return seen
