"""What every use case shares: a context (stores, clock, principal) and common lookups.

Use cases are composed, not inherited: each class takes the context and the collaborators
it calls (lifecycle takes governance, …) in its constructor, so no class can be built
without the rules it depends on. ``UseCase`` only gives them the same lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from modelyard.domain.entities import ModelVersion
from modelyard.domain.names import check_model_name
from modelyard.domain.principal import Actor, Principal
from modelyard.domain.refs import RefKind, VersionRef, is_model_uri, parse_model_uri, parse_ref
from modelyard.domain.suggest import with_suggestion
from modelyard.domain.times import as_utc
from modelyard.errors import InvalidInput, NotFound
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql import repository as repo
from modelyard.storage.sql.database import Database

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def in_utc(value: datetime, what: str) -> datetime:
    """``value`` in UTC, the stored times' zone (a naive time is read as UTC). A time whose
    UTC form is outside the calendar (year 1 at +14:00, 9999-12-31 at -14:00) is refused
    here rather than failing where it is stored or compared."""
    try:
        return as_utc(value).astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"invalid {what} {value.isoformat()}: it is outside years 1-9999 "
                           "in UTC") from None


@dataclass(frozen=True)
class Context:
    """Where a registry's calls run: its database and store, its clock, and as whom."""

    db: Database
    store: ObjectStore
    principal: Principal
    clock: Clock = utc_now


class UseCase:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.store = ctx.store
        self.clock = ctx.clock

    @property
    def principal(self) -> Principal:
        return self.ctx.principal

    def _actor(self, actor: str | None) -> Actor:
        """Whom a change is recorded for: the principal, or someone an admin acts for."""
        return self.ctx.principal.acting_for(actor)

    # -- lookups ------------------------------------------------------------------------
    def _model(self, conn: Connection, name: str) -> repo.ModelRow:
        check_model_name(name)
        row = repo.find_model(conn, name)
        if row is None:
            raise NotFound(f"model {name!r} not found", hint=with_suggestion(
                name, [m.name for m in repo.list_models(conn)], "see 'modelyard models list'"),
                name=name)
        return row

    def _ref(self, name_or_uri: str, ref: str | int | None) -> VersionRef:
        if ref is None:
            if is_model_uri(name_or_uri):
                return parse_model_uri(name_or_uri)
            raise InvalidInput(
                f"{name_or_uri!r} names no version: pass a version or use models:/NAME/VERSION"
            )
        return parse_ref(name_or_uri, ref)

    def _resolve(self, conn: Connection, ref: VersionRef) -> tuple[repo.ModelRow, repo.VersionRow]:
        model = self._model(conn, ref.name)
        row: repo.VersionRow | None
        if ref.kind is RefKind.NUMBER:
            row = repo.find_version(conn, model.id, int(ref.value or 0))
            if row is None and repo.find_version_any(conn, model.id, int(ref.value or 0)):
                raise NotFound(f"version {ref.value} of {ref.name!r} was deleted",
                               name=ref.name, version=ref.value)
        elif ref.kind is RefKind.STAGE:
            row = repo.latest_in_stage(conn, model.id, str(ref.value))
        elif ref.kind is RefKind.ALIAS:
            row = repo.find_by_alias(conn, model.id, str(ref.value))
        else:
            row = repo.latest_in_stage(conn, model.id, None)
        if row is None:
            what = {
                RefKind.NUMBER: f"version {ref.value}",
                RefKind.STAGE: f"no version in stage {ref.value}",
                RefKind.ALIAS: f"alias @{ref.value}",
                RefKind.LATEST: "no versions",
            }[ref.kind]
            by_state = ref.kind in (RefKind.STAGE, RefKind.LATEST)
            message = (f"model {ref.name!r} has {what}" if by_state
                       else f"{what} of model {ref.name!r} not found")
            hint = (with_suggestion(str(ref.value), list(repo.aliases_of_model(conn, model.id)),
                                    f"see 'modelyard models show {ref.name}'")
                    if ref.kind is RefKind.ALIAS else None)
            raise NotFound(message, hint=hint, name=ref.name, ref=str(ref))
        return model, row

    def _versions(
        self, conn: Connection, rows: Sequence[repo.VersionRow | dict[str, Any]],
        name: str | None = None,
    ) -> list[ModelVersion]:
        """Records from version rows (or the dicts a search reads), with their aliases;
        ``name`` is the model's, else each row's ``name``."""
        values = [r if isinstance(r, dict) else r._asdict() for r in rows]
        aliases = repo.aliases_by_version(conn, {v["model_id"] for v in values},
                                          [v["id"] for v in values])
        return [to_version(v, name or v["name"], aliases.get(v["id"], [])) for v in values]


def to_version(row: Mapping[str, Any], name: str, aliases: list[str]) -> ModelVersion:
    """``row``'s JSON columns are fresh objects from the driver, so they are not copied.

    The record is filled the way pickle rebuilds one (``__dict__``, no ``__init__``): a
    frozen dataclass's ``__init__`` sets its 17 fields one ``object.__setattr__`` at a
    time, 4-8 µs a record, most of the Python time of a search returning 10,000."""
    version = object.__new__(ModelVersion)
    version.__dict__.update(
        name=name,
        version=int(row["version"]),
        digest=row["digest"],
        artifact_kind=row["artifact_kind"],
        artifact_name=row["artifact_name"],
        size=int(row["size"]),
        file_count=int(row["file_count"]),
        stage=row["stage"],
        aliases=sorted(aliases),
        params=row["params"] or {},
        metrics=row["metrics"] or {},
        tags=row["tags"] or {},
        description=row["description"] or "",
        lineage=row["lineage"] or {},
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
    return version
