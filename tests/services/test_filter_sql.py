"""Filters compiled to SQL mean what the Python evaluator says, on SQLite and PostgreSQL.

Every filter below is run as a search and compared with evaluating it in Python on every
version: types, missing keys, numeric text, NaN and infinity, huge integers, long and
non-ASCII strings, ``not`` over parts SQL cannot decide.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, select

from modelyard.domain import expression_eval, expressions
from modelyard.domain.entities import ModelVersion
from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql import repository
from modelyard.storage.sql.database import Database, _alembic_config
from modelyard.storage.sql.schema import version_values

BIG = 2**60 + 1  # a double holds 2**60, not this

VERSIONS: list[dict[str, Any]] = [
    {"params": {"lr": 0.1, "depth": 3, "opt": "adam", "flag": True}, "metrics": {"auc": 0.91},
     "tags": {"shard": "3", "team": "fraud"}},
    {"params": {"lr": "0.1", "depth": "3", "opt": "sgd", "flag": False, "none": None},
     "metrics": {"auc": 0.5, "loss": float("nan")}, "tags": {"shard": "3.0", "team": ""}},
    {"params": {"lr": "fast", "depth": 10, "big": BIG}, "metrics": {"auc": float("inf")},
     "tags": {"shard": "10", "team": "Fraud", "note": "é" + "x" * 300}},
    {"params": {"depth": "1e999", "big": str(BIG)}, "metrics": {"auc": -0.0},
     "tags": {"shard": " 3 ", "note": "z" + "x" * 300}},
    {"params": {}, "metrics": {}, "tags": {}, "aliases": ["champion", "latest-good"]},
]
LONG = "z" + "x" * 300  # v4's tags.note; the text index holds its first 200 characters

FILTERS = [
    "tags.shard = '3'", "tags.shard = 3", "tags.shard != '3'", "tags.shard != 3",
    "tags.shard > '2'", "tags.shard < 4", "tags.shard in ('3', 10)", "not tags.shard = 3",
    "params.lr = 0.1", "params.lr = '0.1'", "params.lr != 0.1", "params.lr >= 0.05",
    "params.lr > 'a'", "params.depth > 2", "params.depth = '3'", "params.depth < 1e300",
    "params.depth > 1e300", "params.flag = 1", "params.flag != 'true'", "params.none = 1",
    "params.none != 1", "has(params.none)", "has(params.flag)", "not has(params.lr)",
    "params.big = 1152921504606846977", "params.big > 1152921504606846976",
    "params.big != 1152921504606846976", "params.big = '1152921504606846977'",
    "metrics.auc >= 0.9", "metrics.auc < 0.9", "metrics.auc != 0.5", "metrics.auc = 0",
    "metrics.loss = 1", "metrics.loss != 1", "not metrics.loss < 1", "has(metrics.loss)",
    "metrics.auc > 1e308", "metrics.auc <= -1",
    "has(tags.team)", "tags.team = 'fraud'", "tags.team < 'a'", "tags.team > 'F'",
    "tags.note > 'y'", "tags.note like 'é%'", "not tags.note like 'z%'",
    "version = 2", "version >= '3'", "version != 'x'", "version in (1, 5)", "version < 2.5",
    "stage = 'none'", "stage != 'none'", "stage = 1", "stage != 1", "name = 'm'",
    "name != 'm'", "name = 1", "description = ''", "has(description)",
    "aliases = 'champion'", "aliases != 'champion'", "aliases = 3", "has(aliases)",
    "aliases > 'a'", "1 < 2", "'a' = 'b'", "true", "not false",
    "metrics.auc + 1 > 1.5", "metrics.auc > params.lr", "metrics.auc < production.metrics.auc",
    "not (metrics.auc >= 0.9 or tags.note like 'z%')",
    "tags.shard = '3' and not (params.lr like 'f%')", "created_at > '2000'",
    "tags.`shard` = '3' or version = 5", "tags.missing != 'x'", "not has(tags.missing)",
    f"tags.note = '{LONG}'", f"tags.note = '{LONG[:200]}'", f"tags.note = '{LONG[:199]}'",
    "has(aliases) or tags.shard = '3'", "tags.shard = 3 and metrics.auc >= 0.5 and has(tags.team)",
    "aliases = 'champion' or not has(tags.team)", "tags.shard in ('3', '10') and version > 1",
    "(tags.team = 'fraud' or params.opt = 'sgd') and not metrics.auc > 0.9",
]


def _registry(url: str, root: Path) -> Registry:
    return Registry(Database(url, auto_upgrade=True), ObjectStore(str(root / "objects")),
                    user="alice")


def _load(reg: Registry, model_dir: Path) -> None:
    for v in VERSIONS:
        reg.register("m", model_dir, params=v["params"], metrics=v["metrics"], tags=v["tags"],
                     aliases=v.get("aliases", ()))


def _expected(reg: Registry, text: str) -> list[int]:
    expr = expressions.parse(text)
    return [v.version for v in reg.search_versions()
            if expression_eval.evaluate(expr, v.filter_context()).passed]


def test_every_filter_means_what_the_evaluator_says(reg: Registry, model_dir: Path) -> None:
    _load(reg, model_dir)
    for text in FILTERS:
        assert [v.version for v in reg.search_versions(text)] == _expected(reg, text), text
    reg.set_tags("m", {"shard": "4"}, version=1)  # the index follows an annotation
    assert [v.version for v in reg.search_versions("tags.shard = 4")] == [1]
    assert [v.version for v in reg.search_versions("tags.shard = 3")] == [2, 4]


def test_sql_settles_rows_without_python_unless_it_cannot(
    reg: Registry, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    original = expression_eval.Prepared.evaluate

    def counted(self: expression_eval.Prepared, ctx: Any) -> expression_eval.Evaluation:
        calls.append(ctx)
        return original(self, ctx)

    monkeypatch.setattr(expression_eval.Prepared, "evaluate", counted)
    _load(reg, model_dir)
    for text in ("tags.shard = '3' and metrics.auc >= 0.5", "not params.depth > 2",
                 "stage = 'none' and version in (1, 2)", "aliases != 'champion'"):
        assert reg.search_versions(text)
    assert calls == []  # no row needed the evaluator
    assert [v.version for v in reg.search_versions("tags.note like 'é%'")] == [3]
    assert len(calls) == 5  # like is Python's: every row was evaluated
    calls.clear()
    assert [v.version for v in reg.search_versions("params.big > 2")] == [3, 4]
    assert len(calls) == 2  # only the rows holding a huge integer were left to Python


def test_migration_backfills_existing_versions(
    registry_url: str, tmp_path: Path, model_dir: Path
) -> None:
    """0007 fills ``version_values`` from the JSON columns exactly as writes fill it."""
    with _registry(registry_url, tmp_path) as reg:
        _load(reg, model_dir)
        with reg.db.read() as conn:
            written = sorted(conn.execute(select(version_values)).all())
        assert len(written) > 20
        with reg.db.engine.connect() as conn:
            command.downgrade(_alembic_config(conn), "0006")
            command.upgrade(_alembic_config(conn), "head")
            conn.commit()
        with reg.db.read() as conn:
            assert sorted(conn.execute(select(version_values)).all()) == written
        for text in FILTERS:
            assert [v.version for v in reg.search_versions(text)] == _expected(reg, text)


def test_long_results_read_aliases_by_model(
    reg: Registry, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the IN-list bound, aliases come by model, still only for the versions listed."""
    from modelyard.storage.sql import repository

    for name in ("a", "b"):
        for _ in range(3):
            reg.register(name, model_dir)
    reg.set_alias("a", "best", 2)
    reg.set_alias("b", "best", 3)
    reg.set_alias("b", "old", 1)
    expected = [(v.name, v.version, v.aliases) for v in reg.search_versions()]
    monkeypatch.setattr(repository, "_MAX_IDS", 1)
    assert [(v.name, v.version, v.aliases) for v in reg.search_versions()] == expected
    assert [(v.name, v.version, v.aliases) for v in reg.search_versions("version != 3")] == [
        ("a", 1, []), ("a", 2, ["best"]), ("b", 1, ["old"]), ("b", 2, [])]
    assert expected[5] == ("b", 3, ["best"])


def test_search_cost_follows_the_matches_not_the_versions(tmp_path: Path) -> None:
    """A selective filter reads its index entries and then only the matching rows: the
    same 10 matches cost about the same among 200 versions as among 2,000 (probing every
    version against the filter, as searches once did, costs ten times more). Work is
    counted in SQLite virtual-machine steps, which do not depend on the machine's load."""
    steps = {}
    for count in (200, 2000):
        with _registry(f"sqlite:///{tmp_path / f'{count}.db'}", tmp_path) as reg:
            _bulk_load(reg, count, hits=10)
            counted = [0]

            def step(counted: list[int] = counted) -> int:
                counted[0] += 1
                return 0

            event.listen(reg.db.engine, "checkout",
                         lambda dbapi, *_: dbapi.set_progress_handler(step, 100))
            for text in ("tags.shard = 'hit'", "name = 'm' and metrics.auc >= 0.95"):
                assert len(reg.search_versions(text)) == 10
                assert len(reg.list_versions("m", text)) == 10
            steps[count] = counted[0]
    assert steps[2000] < 1.5 * steps[200], steps


def _bulk_load(reg: Registry, count: int, hits: int) -> None:
    """``count`` versions of model ``m``; the last ``hits`` are the matches of both filters."""
    now = datetime.now(UTC)
    reg.create_model("m")
    with reg.db.transaction() as conn:
        model = repository.find_model(conn, "m")
        assert model is not None
        for number in range(1, count + 1):
            hit = number > count - hits
            repository.insert_version(
                conn, model_id=model.id, version=number, digest="blake3:" + "0" * 64,
                artifact_kind="file", artifact_name="m.bin", size=1, file_count=1,
                stage="none", params={}, metrics={"auc": 0.99 if hit else 0.5},
                tags={"shard": "hit" if hit else "miss"}, description="", lineage={},
                created_by="alice", created_at=now, updated_at=now)
        repository.update_model(conn, model.id, last_version=count)


def test_search_records_have_every_field(reg: Registry, model_dir: Path) -> None:
    """Records are filled without ``__init__`` (base.to_version): each has all the
    dataclass's fields, equal to what its constructor makes of them."""
    _load(reg, model_dir)
    names = {f.name for f in dataclasses.fields(ModelVersion)}
    for found in (reg.search_versions(), reg.search_versions("tags.shard = '3'"),
                  [reg.get_version("m", 5)]):
        for version in found:
            assert set(vars(version)) == names
            assert dataclasses.replace(version) == version
    assert reg.get_version("m", 5).aliases == ["champion", "latest-good"]
    assert reg.search_versions("version = 1")[0].created_at.tzinfo is UTC
