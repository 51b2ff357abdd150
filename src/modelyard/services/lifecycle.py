"""Stages, rollback, aliases and history: the governed part of a version's life.

Each change is one transaction holding the model's row lock; promotion archives the
previous production in that same transaction, and the partial unique index on
``stage = 'production'`` refuses a second production even if this code were wrong.
Every move to production asks ``governance`` first: it is a constructor argument, so a
lifecycle without the model's policy cannot exist.
"""

from __future__ import annotations

from datetime import datetime

from modelyard.domain.entities import HistoryState, ModelVersion
from modelyard.domain.history import former_productions, replay
from modelyard.domain.names import check_alias, check_version_number
from modelyard.domain.principal import Permission
from modelyard.domain.stages import ROLLBACK_FROM, Stage, check_transition, parse_stage
from modelyard.domain.times import as_utc
from modelyard.errors import InvalidTransition, NotFound
from modelyard.services import moves
from modelyard.services.base import Context, UseCase
from modelyard.services.catalog import Catalog
from modelyard.services.governance import Governance
from modelyard.services.operations import operation
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import repository as repo


class Lifecycle(UseCase):
    def __init__(self, ctx: Context, catalog: Catalog, governance: Governance) -> None:
        super().__init__(ctx)
        self.catalog = catalog
        self.governance = governance

    @operation(Permission.CONTRIBUTE)
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
            if target is Stage.PRODUCTION:
                self.governance.check_direct_promotion(conn, model, row, who)
                moves.archive_production(conn, model, who, now, f"superseded by {row.version}")
            moves.set_stage(conn, name, row, target, who, now, "version.transition", comment)
        return self.catalog.get_version(name, int(row.version))

    @operation(Permission.CONTRIBUTE)
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
            former = former_productions(audit.list_events(conn, model=name))
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
            self.governance.check_direct_rollback(conn, model, target)
            moves.archive_production(conn, model, who, now, f"rolled back to {target.version}")
            moves.set_stage(conn, name, target, Stage.PRODUCTION, who, now, "version.rollback",
                            comment)
        return self.catalog.get_version(name, int(target.version))


    # -- aliases ------------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def set_alias(
        self, name: str, alias: str, version: int | str, *, actor: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at a version (moving it if it pointed elsewhere)."""
        who, now = self._actor(actor), self.clock()
        check_alias(alias)
        with self.db.transaction() as conn:
            model, row = self._resolve(conn, self._ref(name, version))
            moves.move_alias(conn, model.id, name, alias, row.id, int(row.version), who, now)
        return self.catalog.get_version(name, int(row.version))

    @operation(Permission.CONTRIBUTE)
    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> None:
        """Remove an alias; the version it pointed at is unchanged."""
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            model = self._model(conn, name)
            current = repo.find_by_alias(conn, model.id, check_alias(alias))
            if current is None:
                raise NotFound(f"alias @{alias} of model {name!r} not found")
            moves.delete_alias(conn, model.id, name, alias, int(current.version), who, now)

    # -- history ------------------------------------------------------------------------
    @operation(Permission.READ)
    def history(self, name: str, at: datetime | None = None) -> HistoryState:
        """Stage and alias changes of ``name``; with ``at``, the state as it was then."""
        with self.db.read() as conn:
            self._model(conn, name)
            events = audit.list_events(conn, model=name)
        return replay(name, events, as_utc(at) if at is not None else None)


