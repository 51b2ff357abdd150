"""The metadata schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Alembic migrations create it; this module is what queries are written against. Model
names are data, not keys: rows use surrogate ids so renames and soft deletes stay cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python, naive UTC in the database (same on both engines)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware values")
        return value.astimezone(UTC).replace(tzinfo=None)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any]:
        """The driver's value goes straight to ``utc_from_db``: DateTime's own reading on
        SQLite (a regular expression) would parse the text only to have it redone."""
        return _utc_or_none


def utc_from_db(value: str | datetime) -> datetime:
    """A stored time as the driver returns it (text from SQLite, a naive datetime from
    psycopg) as an aware UTC datetime. The text is parsed with its zone (a tenth of the
    cost of parsing it naive and then replacing the zone)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    return value.replace(tzinfo=UTC)


def _utc_or_none(value: str | datetime | None) -> datetime | None:
    return None if value is None else utc_from_db(value)


class MetricValue(TypeDecorator[float]):
    """A metric point: a double, NaN stored as NULL. SQLite keeps no NaN in a REAL column
    (it reads as NULL), and a diverged run's ``loss = nan`` is still a point worth
    keeping, so both backends store it alike."""

    impl = Float
    cache_ok = True

    def process_bind_param(self, value: float | None, dialect: Dialect) -> float | None:
        return None if value is None or value != value else value

    def process_result_value(self, value: float | None, dialect: Dialect) -> float:
        return math.nan if value is None else value


JsonType = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrement needs INTEGER

metadata = MetaData()

registry_state = Table(
    "registry_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_count", BigInteger, nullable=False),
    Column("last_event_hash", String(80), nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("tags", JsonType, nullable=False),
    Column("last_version", Integer, nullable=False, server_default="0"),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model_id", Id, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("artifact_kind", String(8), nullable=False),
    Column("artifact_name", String(512), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("params", JsonType, nullable=False),
    Column("metrics", JsonType, nullable=False),
    Column("tags", JsonType, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("lineage", JsonType, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
    UniqueConstraint("model_id", "version", name="uq_model_versions_number"),
    Index(
        "uq_model_versions_one_production",
        "model_id",
        unique=True,
        sqlite_where=text("stage = 'production'"),
        postgresql_where=text("stage = 'production'"),
    ),
    Index("ix_model_versions_digest", "digest"),
)

TEXT_PREFIX = 200  # characters of a string value the text index holds (PostgreSQL caps entries)

version_values = Table(  # one row per param, metric and tag: what the filter language indexes
    "version_values",
    metadata,
    Column("version_id", Id, ForeignKey("model_versions.id"), primary_key=True),
    Column("field", String(8), primary_key=True),  # params, metrics or tags
    Column("key", String(250), primary_key=True),
    Column("kind", String(1), nullable=False),  # s string, n number, b boolean
    Column("text", Text, nullable=True),  # a string value
    Column("text_prefix", String(TEXT_PREFIX), nullable=True),  # its first characters
    Column("num", Double, nullable=True),  # the numeric reading, when a double holds it exactly
    Column("approx", Boolean, nullable=False),  # a numeric reading a double cannot hold
    # covering: a filter's lookup reads the matching version ids from the index alone
    Index("ix_version_values_num", "field", "key", "num", "kind", "version_id"),
    Index("ix_version_values_text", "field", "key", "text_prefix", "version_id"),
    Index("ix_version_values_approx", "field", "key", sqlite_where=text("approx = 1"),
          postgresql_where=text("approx")),
)

aliases = Table(
    "aliases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model_id", Id, ForeignKey("models.id"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version_id", Id, ForeignKey("model_versions.id"), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("model_id", "alias", name="uq_aliases_model_alias"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("via", String(256), nullable=True),  # the admin who acted on the actor's behalf
    Column("action", String(64), nullable=False),
    Column("model", String(128), nullable=True),
    Column("version", Integer, nullable=True),
    Column("before", JsonType, nullable=True),
    Column("after", JsonType, nullable=True),
    Column("comment", Text, nullable=False, server_default=""),
    Column("prev_hash", String(80), nullable=False),
    Column("hash", String(80), nullable=False),
    Index("ix_audit_events_model", "model", "seq"),
    Index("ix_audit_events_model_action", "model", "action", "seq"),  # where a name starts
)
