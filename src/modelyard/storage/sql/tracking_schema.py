"""Tables of experiment tracking: experiments, runs and what runs log.

Metric history is one row per logged point, so ``log_metric`` is a plain insert and the
latest value of each key is a window query, never a read-modify-write. Params and tags are
one row per key (a param is set once; a tag may be overwritten). Run artifacts and inputs
record digests only: the bytes live in the same content-addressed object store as models.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from modelyard.storage.sql.schema import Id, JsonType, MetricValue, UTCDateTime, metadata

RUN_ID_LENGTH = 32

experiments = Table(
    "experiments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("tags", JsonType, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(RUN_ID_LENGTH), primary_key=True),
    Column("experiment_id", Id, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("start_time", UTCDateTime, nullable=False),
    Column("end_time", UTCDateTime, nullable=True),
    Column("git", JsonType, nullable=True),
    Column("environment", JsonType, nullable=False),
    Index("ix_runs_experiment", "experiment_id", "start_time"),
)

run_params = Table(
    "run_params",
    metadata,
    Column("run_id", String(RUN_ID_LENGTH), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),  # JSON text: SQLite's JSON affinity turns 1.0 into 1
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(RUN_ID_LENGTH), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(RUN_ID_LENGTH), ForeignKey("runs.id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", MetricValue, nullable=True),  # NULL: NaN
    Column("step", Integer, nullable=False),
    Column("timestamp", UTCDateTime, nullable=False),
    Index("ix_run_metrics_run_key_step", "run_id", "key", "step"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(RUN_ID_LENGTH), ForeignKey("runs.id"), nullable=False),
    Column("path", String(512), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("artifact_name", String(512), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("flavor", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("run_id", "path", name="uq_run_artifacts_path"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(RUN_ID_LENGTH), ForeignKey("runs.id"), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("dataset", JsonType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("run_id", "digest", name="uq_run_inputs_digest"),
)
