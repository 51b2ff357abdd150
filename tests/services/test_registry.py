"""Registry use cases on real SQLite and PostgreSQL (the ``reg`` fixture runs both)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from modelyard.errors import AlreadyExists, InvalidInput, InvalidTransition, NotFound
from modelyard.services.registry import Registry

DIGEST = re.compile(r"^blake3:[0-9a-f]{64}$")


def allow_direct_promotion(reg: Registry, name: str) -> None:
    """These tests are about lifecycle mechanics, not approvals (tests/governance/ covers those)."""
    reg.set_policy(name, approvals=0, comment="lifecycle mechanics test")


def test_register_directory_creates_model_and_numbered_versions(
    reg: Registry, model_dir: Path
) -> None:
    v1 = reg.register("fraud", model_dir, params={"lr": 0.1}, metrics={"auc": 0.91},
                      tags={"team": "risk"}, description="first try")
    assert (v1.name, v1.version, v1.stage) == ("fraud", 1, "none")
    assert DIGEST.match(v1.digest)
    assert v1.artifact_kind == "dir" and v1.file_count == 3
    assert v1.params == {"lr": 0.1} and v1.metrics == {"auc": 0.91}
    assert v1.tags == {"team": "risk"} and v1.description == "first try"
    assert v1.created_by == "alice"
    (model_dir / "config.json").write_text('{"layers": 4}')
    v2 = reg.register("fraud", model_dir)
    assert v2.version == 2 and v2.digest != v1.digest
    assert [m.name for m in reg.list_models()] == ["fraud"]
    assert reg.get_model("fraud").latest_version == 2


def test_identical_content_is_stored_once(reg: Registry, model_dir: Path) -> None:
    a = reg.register("a", model_dir)
    b = reg.register("b", model_dir)
    assert a.digest == b.digest
    objects = list(reg.store.iter_digests())
    assert len(objects) == len(set(objects)) == 4  # three files + one manifest


def test_register_single_file_downloads_under_its_name(reg: Registry, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x01onnx-ish")
    version = reg.register("clf", model)
    assert version.artifact_kind == "file" and version.artifact_name == "model.onnx"
    out = reg.download("models:/clf/1", tmp_path / "out")
    assert out == tmp_path / "out" / "model.onnx"
    assert out.read_bytes() == model.read_bytes()


def test_resolve_by_number_stage_alias_latest_and_uri(reg: Registry, model_dir: Path) -> None:
    for _ in range(3):
        reg.register("fraud", model_dir)
    allow_direct_promotion(reg, "fraud")
    reg.transition("fraud", 2, "staging")
    reg.transition("fraud", 2, "production")
    reg.set_alias("fraud", "champion", 3)
    assert reg.get_version("fraud", 1).version == 1
    assert reg.get_version("fraud", "v1").version == 1
    assert reg.get_version("models:/fraud/production").version == 2
    assert reg.get_version("fraud", "production").version == 2
    assert reg.get_version("models:/fraud@champion").version == 3
    assert reg.get_version("fraud", "@champion").aliases == ["champion"]
    assert reg.get_version("models:/fraud/latest").version == 3
    with pytest.raises(NotFound, match="version 9 of model 'fraud' not found"):
        reg.get_version("fraud", 9)
    with pytest.raises(NotFound, match="alias @nobody"):
        reg.get_version("models:/fraud@nobody")
    with pytest.raises(NotFound, match="no version in stage staging"):
        reg.get_version("fraud", "staging")
    with pytest.raises(NotFound, match="model 'ghost' not found"):
        reg.get_version("models:/ghost/1")
    with pytest.raises(InvalidInput):
        reg.get_version("models:/fraud")
    with pytest.raises(InvalidInput):
        reg.get_version("fraud", "-1")


def test_resolving_reads_only_the_named_model(reg: Registry, model_dir: Path) -> None:
    """Each kind of reference is looked up by the model's name in one statement: other
    models' versions, aliases and stages never answer, deleted versions and models never
    do, and a version's aliases all come along, sorted."""
    for name in ("a", "b"):
        for _ in range(3):
            reg.register(name, model_dir)
        allow_direct_promotion(reg, name)
    reg.transition("b", 3, "staging")
    reg.set_alias("b", "champion", 3)
    reg.set_alias("a", "zeta", 1)
    reg.set_alias("a", "champion", 1)
    assert reg.get_version("models:/a@champion").aliases == ["champion", "zeta"]
    assert reg.get_version("models:/a@champion").version == 1
    assert reg.get_version("models:/b@champion").version == 3
    with pytest.raises(NotFound, match="no version in stage staging"):
        reg.get_version("models:/a/staging")
    assert reg.get_version("models:/b/staging").name == "b"
    reg.delete_version("a", 3)
    assert reg.get_version("models:/a/latest").version == 2
    with pytest.raises(NotFound, match="was deleted"):
        reg.get_version("a", 3)
    reg.delete_model("b")
    with pytest.raises(NotFound, match="model 'b' not found"):
        reg.get_version("models:/b@champion")


def test_promotion_archives_previous_production(reg: Registry, model_dir: Path) -> None:
    reg.register("fraud", model_dir)
    reg.register("fraud", model_dir)
    allow_direct_promotion(reg, "fraud")
    reg.transition("fraud", 1, "staging")
    reg.transition("fraud", 1, "production")
    reg.transition("fraud", 2, "staging")
    promoted = reg.transition("fraud", 2, "production", comment="better auc")
    assert promoted.stage == "production"
    assert reg.get_version("fraud", 1).stage == "archived"
    assert reg.get_model("fraud").production_version == 2


@pytest.mark.parametrize(("path", "target"), [
    ([], "production"),                      # none -> production skips review
    (["archived"], "production"),            # archived -> production only by rollback
    (["staging", "production"], "staging"),  # production -> staging
    (["staging", "production"], "none"),
])
def test_illegal_transitions_are_refused_and_change_nothing(
    reg: Registry, model_dir: Path, path: list[str], target: str
) -> None:
    reg.register("m", model_dir)
    allow_direct_promotion(reg, "m")
    for stage in path:
        reg.transition("m", 1, stage)
    before = reg.get_version("m", 1).stage
    events = len(reg.audit("m"))
    with pytest.raises(InvalidTransition, match=f"cannot move from {before} to {target}"):
        reg.transition("m", 1, target)
    assert reg.get_version("m", 1).stage == before
    assert len(reg.audit("m")) == events


def test_unknown_stage_is_invalid_input(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir)
    with pytest.raises(InvalidInput, match="unknown stage 'prod'"):
        reg.transition("m", 1, "prod")


def test_database_enforces_a_single_production_version(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir)
    reg.register("m", model_dir)
    allow_direct_promotion(reg, "m")
    reg.transition("m", 1, "staging")
    reg.transition("m", 1, "production")
    with pytest.raises(AlreadyExists) as refused, reg.db.transaction() as conn:
        conn.execute(text("UPDATE model_versions SET stage = 'production' WHERE version = 2"))
    assert isinstance(refused.value.__cause__, sqlalchemy.exc.IntegrityError)  # the index said no
    assert reg.get_version("m", 2).stage == "none"


def test_rollback_restores_previous_production(reg: Registry, model_dir: Path) -> None:
    for v in (1, 2, 3):
        reg.register("fraud", model_dir)
        if v == 1:
            allow_direct_promotion(reg, "fraud")
        reg.transition("fraud", v, "staging")
        reg.transition("fraud", v, "production")
    restored = reg.rollback("fraud", comment="v3 misbehaves")
    assert restored.version == 2 and restored.stage == "production"
    assert reg.get_version("fraud", 3).stage == "archived"
    again = reg.rollback("fraud")  # the one before 2 that is archived... 3 held it after 2
    assert again.version == 3
    chosen = reg.rollback("fraud", to=1)
    assert chosen.version == 1
    assert [v.version for v in reg.list_versions("fraud") if v.stage == "production"] == [1]


def test_rollback_refuses_versions_that_never_held_production(
    reg: Registry, model_dir: Path
) -> None:
    reg.register("m", model_dir)
    reg.register("m", model_dir)
    with pytest.raises(InvalidTransition, match="no archived version"):
        reg.rollback("m")
    allow_direct_promotion(reg, "m")
    reg.transition("m", 1, "staging")
    reg.transition("m", 1, "production")
    reg.transition("m", 2, "archived")
    with pytest.raises(InvalidTransition, match="never held production"):
        reg.rollback("m", to=2)
    with pytest.raises(NotFound):
        reg.rollback("m", to=7)
    assert reg.get_version("m", "production").version == 1


def test_aliases_move_and_reserved_names_are_refused(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir, aliases=["challenger"])
    reg.register("m", model_dir)
    reg.set_alias("m", "champion", 1)
    reg.set_alias("m", "champion", 2)
    assert reg.get_version("m", "@champion").version == 2
    assert reg.get_version("m", 1).aliases == ["challenger"]
    for bad in ("latest", "production", "Staging", "v3", "", "9lives", "a/b"):
        with pytest.raises(InvalidInput):
            reg.set_alias("m", bad, 1)
    reg.delete_alias("m", "champion")
    with pytest.raises(NotFound):
        reg.get_version("m", "@champion")
    with pytest.raises(NotFound):
        reg.delete_alias("m", "champion")


def test_tags_and_descriptions_on_models_and_versions(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir, tags={"a": "1"})
    reg.set_tag("m", "b", "2", version=1)
    reg.set_tags("m", {"owner": "risk"})
    reg.set_description("m", "fraud scorer")
    reg.set_description("m", "retrained", version=1)
    version = reg.get_version("m", 1)
    assert version.tags == {"a": "1", "b": "2"} and version.description == "retrained"
    model = reg.get_model("m")
    assert model.tags == {"owner": "risk"} and model.description == "fraud scorer"
    actions = [e.action for e in reg.audit("m")]
    assert actions.count("tags.set") == 2 and actions.count("description.set") == 2


def test_soft_delete_never_reuses_numbers(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir, aliases=["champion"])
    reg.register("m", model_dir)
    reg.delete_version("m", 2)
    reg.delete_version("m", 1)
    with pytest.raises(NotFound, match="was deleted"):
        reg.get_version("m", 2)
    with pytest.raises(NotFound):
        reg.get_version("m", "@champion")
    assert reg.register("m", model_dir).version == 3
    assert [v.version for v in reg.list_versions("m")] == [3]


def test_production_version_cannot_be_deleted(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir)
    allow_direct_promotion(reg, "m")
    reg.transition("m", 1, "staging")
    reg.transition("m", 1, "production")
    with pytest.raises(InvalidTransition, match="archive it first"):
        reg.delete_version("m", 1)
    with pytest.raises(InvalidTransition):
        reg.delete_model("m")


def test_models_create_delete_and_name_rules(reg: Registry, model_dir: Path) -> None:
    reg.create_model("empty", description="nothing yet", tags={"k": "v"})
    with pytest.raises(AlreadyExists):
        reg.create_model("empty")
    reg.delete_model("empty")
    with pytest.raises(NotFound):
        reg.get_model("empty")
    with pytest.raises(AlreadyExists, match="was deleted"):
        reg.register("empty", model_dir)
    for bad in ("", "-x", "a b", "x" * 129, "../etc", "naïve"):
        with pytest.raises(InvalidInput):
            reg.register(bad, model_dir)
    assert reg.list_models() == []


def test_bad_register_input_changes_nothing(reg: Registry, model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        reg.register("m", tmp_path / "missing")
    with pytest.raises(InvalidInput, match="must be a number"):
        reg.register("m", model_dir, metrics={"auc": "high"})
    with pytest.raises(InvalidInput, match="reserved"):
        reg.register("m", model_dir, aliases=["latest"])
    assert reg.list_models() == []
    assert reg.audit() == []


def test_search_versions_with_the_filter_language(reg: Registry, model_dir: Path) -> None:
    reg.register("fraud", model_dir, metrics={"auc": 0.85}, tags={"team": "risk"})
    reg.register("fraud", model_dir, metrics={"auc": 0.93}, tags={"team": "risk"})
    reg.register("fraud", model_dir, metrics={"auc": 0.95}, tags={"team": "growth"})
    reg.register("churn", model_dir, metrics={"auc": 0.99}, tags={"team": "risk"})
    found = reg.search_versions("name = 'fraud' and metrics.auc >= 0.9 and tags.team = 'risk'")
    assert [(v.name, v.version) for v in found] == [("fraud", 2)]
    found = reg.search_versions("metrics.auc > 0.94")
    assert sorted((v.name, v.version) for v in found) == [("churn", 1), ("fraud", 3)]
    assert [v.version for v in reg.list_versions("fraud", filter="tags.team = 'growth'")] == [3]
    with pytest.raises(InvalidInput, match="column"):
        reg.search_versions("metrics.auc >=")


def test_register_returns_the_version_as_stored(reg: Registry, model_dir: Path) -> None:
    """``register`` answers from the inserted row, not a second read; it is the record a
    later read gives, down to the order the database keeps JSON keys in (PostgreSQL's
    jsonb sorts them) and the aliases set with it."""
    reg.register("fraud", model_dir)
    made = reg.register("fraud", model_dir, params={"zeta": 1, "alpha": "x"},
                        metrics={"b": 0.5, "a": 1.0}, tags={"team": "risk"},
                        description="second", aliases=["champion", "best"])
    read = reg.get_version("fraud", 2)
    assert made == read and made.aliases == ["best", "champion"]
    assert [list(made.params), list(made.metrics)] == [list(read.params), list(read.metrics)]
    assert made.created_at == read.created_at and made.created_at.tzinfo is not None


def test_history_replays_and_answers_at_a_time(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir)
    reg.register("m", model_dir)
    allow_direct_promotion(reg, "m")
    reg.transition("m", 1, "staging")
    reg.transition("m", 1, "production")
    reg.set_alias("m", "champion", 1)
    middle = reg.audit("m")[-1].at
    reg.transition("m", 2, "staging")
    reg.transition("m", 2, "production")
    reg.set_alias("m", "champion", 2)
    now = reg.history("m")
    assert now.production == 2 and now.aliases == {"champion": 2}
    assert now.stages == {1: "archived", 2: "production"}
    then = reg.history("m", at=middle)
    assert then.production == 1 and then.aliases == {"champion": 1}
    assert all(e.at <= middle for e in then.events)


def test_download_refuses_corrupted_content_without_partial_output(
    reg: Registry, model_dir: Path, tmp_path: Path
) -> None:
    version = reg.register("m", model_dir)
    out = tmp_path / "good"
    reg.download("models:/m/1", out)
    assert (out / "sub" / "vocab.txt").read_text() == "a\nb\nc\n"
    weights = reg.store.put_tree(model_dir / "weights.bin").digest
    path = Path(reg.store.root) / weights[7:9] / weights[9:]
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    bad = tmp_path / "bad"
    with pytest.raises(Exception) as info:
        reg.download(version.uri, bad)
    assert type(info.value).__name__ == "IntegrityError"
    assert not bad.exists() or list(bad.iterdir()) == []
    report = reg.verify()
    assert report.corrupt == [weights] and not report.ok


def test_verify_reports_missing_objects(reg: Registry, model_dir: Path) -> None:
    version = reg.register("m", model_dir)
    assert reg.verify().ok
    reg.store.delete(version.digest)
    report = reg.verify()
    assert report.missing == [version.digest]


def test_every_change_is_audited_in_a_valid_chain(reg: Registry, model_dir: Path) -> None:
    from modelyard.storage.sql import audit_log as audit

    reg.register("m", model_dir)
    reg.transition("m", 1, "staging", comment="ready")
    reg.set_alias("m", "champion", 1)
    events = reg.audit("m")
    assert [e.action for e in events] == [
        "model.create", "version.register", "version.transition", "alias.set"]
    assert events[2].before == {"stage": "none"} and events[2].after == {"stage": "staging"}
    assert events[2].comment == "ready" and events[2].actor == "alice"
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    with reg.db.read() as conn:
        assert audit.verify_chain(conn)[2] == ""
    with reg.db.transaction() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    with reg.db.read() as conn:
        _checked, bad, reason = audit.verify_chain(conn)
    assert bad is not None and bad.seq == 3 and "altered" in reason


def test_actor_is_explicit_per_call(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir, actor="bob")
    reg.transition("m", 1, "staging", actor="carol")
    assert reg.get_version("m", 1).created_by == "bob"
    assert [e.actor for e in reg.audit("m")][-1] == "carol"


def test_search_pushdown_agrees_with_the_evaluator(reg: Registry, model_dir: Path) -> None:
    reg.register("a", model_dir, tags={"team": "risk", "n": "5", "odd key": "x"})
    reg.register("a", model_dir, tags={"team": "risk's", "n": "05"})
    reg.register("b", model_dir, tags={"team": "growth"})
    reg.transition("b", 1, "staging")

    def found(expr: str) -> list[tuple[str, int]]:
        return [(v.name, v.version) for v in reg.search_versions(expr)]

    assert found("tags.team = 'risk'") == [("a", 1)]
    assert found("tags.team = 'risk''s'") == [("a", 2)]
    assert found("tags.`odd key` = 'x'") == [("a", 1)]
    assert found("tags.n = '5'") == [("a", 1)]  # text equality, pushed down to SQL
    assert found("tags.n = 5") == [("a", 1), ("a", 2)]  # numeric, evaluated in Python
    assert found("stage = 'staging' and tags.team = 'growth'") == [("b", 1)]
    assert found("version = 2") == [("a", 2)]
    assert found("tags.team = 'risk' or version = 2") == [("a", 1), ("a", 2)]
    assert [v.version for v in reg.list_versions("a", filter="tags.missing = 'x'")] == []
