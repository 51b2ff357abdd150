"""Issue 9, finding 7: ``audit verify`` replays the log and names every edit the log does not
explain: a direct UPDATE of ``model_versions`` (stage, digest), of aliases, of a policy, of a
dataset's digest; and a correct registry (old events with fewer fields too) raises no alarm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.domain.audit_report import Disagreement, compare
from modelyard.domain.history import logged_facts
from modelyard.services.registry import Registry
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql.schema import audit_events, registry_state
from modelyard.storage.sql.state_facts import current_facts


def _content(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def fraud(reg: Registry, tmp_path: Path) -> Registry:
    """fraud v1 in production (@champion), v2 and v3 registered; policy 1 needs no approval."""
    for number in (1, 2, 3):
        reg.register("fraud", _content(tmp_path, f"w{number}.bin", b"weights %d" % number),
                     metrics={"auc": 0.9 + number / 100}, tags={"team": "risk"})
    reg.set_policy("fraud", approvals=0, comment="ship fast")
    reg.transition("fraud", 1, "staging")
    reg.transition("fraud", 1, "production")
    reg.set_alias("fraud", "champion", 1)
    assert reg.verify_audit().ok
    return reg


def _sql(reg: Registry, statement: str, **params: Any) -> None:
    with reg.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def _model_version_sql(column: str) -> str:
    return (f"UPDATE model_versions SET {column} = :value WHERE version = :number AND model_id ="
            " (SELECT id FROM models WHERE name = 'fraud')")


def _found(reg: Registry) -> set[tuple[str, str, int | None, str, Any, Any]]:
    report = reg.verify_audit()
    assert report.chain_ok, report.reason  # the chain itself was not touched
    assert not report.ok
    return {(d.kind, d.name, d.number, d.field, _hashable(d.state), _hashable(d.log))
            for d in report.disagreements}


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def test_production_moved_by_sql_is_named_for_both_versions(fraud: Registry) -> None:
    _sql(fraud, _model_version_sql("stage"), value="archived", number=1)
    _sql(fraud, _model_version_sql("stage"), value="production", number=3)
    assert fraud.get_version("models:/fraud/production").version == 3  # what users now get
    assert _found(fraud) == {
        ("version", "fraud", 1, "stage", "archived", "production"),
        ("version", "fraud", 3, "stage", "production", "none"),
    }


def test_digest_swapped_by_sql_is_named(fraud: Registry) -> None:
    v1, v2 = fraud.get_version("fraud", 1).digest, fraud.get_version("fraud", 2).digest
    _sql(fraud, _model_version_sql("digest"), value=v1, number=2)
    assert _found(fraud) == {("version", "fraud", 2, "digest", v1, v2)}


def test_artifact_shape_edits_are_named(fraud: Registry) -> None:
    """A download reads kind, file name and file count from the row: edits must show."""
    _sql(fraud, _model_version_sql("artifact_name"), value="evil.bin", number=2)
    _sql(fraud, _model_version_sql("file_count"), value=7, number=3)
    assert _found(fraud) == {("version", "fraud", 2, "artifact_name", "evil.bin", "w2.bin"),
                             ("version", "fraud", 3, "file_count", 7, 1)}


def test_alias_policy_and_inserted_version_are_named(fraud: Registry) -> None:
    _sql(fraud, "UPDATE aliases SET version_id = (SELECT id FROM model_versions WHERE version = 2)"
                " WHERE alias = 'champion'")
    _sql(fraud, "UPDATE model_policies SET approvals = 5")
    _sql(fraud, "INSERT INTO model_versions (model_id, version, digest, artifact_kind, "
                "artifact_name, size, file_count, stage, params, metrics, tags, description, "
                "lineage, created_by, created_at, updated_at) SELECT model_id, 4, digest, "
                "artifact_kind, artifact_name, size, file_count, 'staging', params, metrics, tags, "
                "description, lineage, created_by, created_at, updated_at FROM model_versions "
                "WHERE version = 1")
    found = _found(fraud)
    assert ("model", "fraud", None, "@champion", 2, 1) in found
    assert ("policy", "fraud", 1, "approvals", 5, 0) in found
    assert ("version", "fraud", 4, "exists", True, False) in found
    assert len(found) == 3


def test_dataset_digest_edit_is_named(reg: Registry, tmp_path: Path) -> None:
    reg.register_dataset("iris", _content(tmp_path, "iris.csv", b"a,b\n1,2\n"))
    assert reg.verify_audit().ok
    _sql(reg, "UPDATE dataset_versions SET digest = :d", d="blake3:" + "1" * 64)
    assert {(k, n, v, f) for k, n, v, f, _, _ in _found(reg)} == {
        ("dataset", "iris", 1, "digest")}


def test_user_and_token_edits_are_named(reg: Registry) -> None:
    """An insider who cannot mint tokens through the registry edits the tables instead: makes
    a viewer an admin, re-enables a disabled user, revives a revoked token, swaps a token's
    stored hash for one they know the secret of, slips in a user the log never created."""
    reg.create_user("root", role="admin")
    reg.create_user("vi", role="viewer")
    _, mallory_secret = reg.create_user("mallory", role="contributor")
    spare, _ = reg.create_token(user="root", name="ci", expires="30d")
    reg.revoke_token(spare.id)
    reg.disable_user("mallory")
    reg.set_role("vi", "reviewer")
    assert reg.verify_audit().ok  # every change so far went through the registry
    root_token = reg.list_tokens(user="root")[0].id
    _sql(reg, "UPDATE users SET role = 'admin' WHERE name = 'vi'")
    _sql(reg, "UPDATE users SET disabled_at = NULL WHERE name = 'mallory'")
    _sql(reg, "UPDATE tokens SET revoked_at = NULL WHERE id = :t", t=spare.id)
    _sql(reg, "UPDATE tokens SET secret_hash = :h WHERE id = :t", h="blake3:" + "2" * 64,
         t=root_token)
    _sql(reg, "INSERT INTO users (name, role, created_at, created_by) "
              "VALUES ('eve', 'admin', '2026-01-01 00:00:00', 'eve')")
    found = {(k, n, f, s, lg) for k, n, _, f, s, lg in _found(reg)}
    assert {(k, n, f) for k, n, f, _, _ in found} == {
        ("user", "vi", "role"), ("user", "mallory", "disabled"),
        ("token", spare.id, "revoked"), ("token", root_token, "fingerprint"),
        ("user", "eve", "exists")}
    assert ("user", "vi", "role", "admin", "reviewer") in found
    logged = json.dumps([e.to_dict() for e in reg.audit()])
    assert mallory_secret.rsplit("_", 1)[1] not in logged  # shown once, never logged


def test_a_busy_untouched_registry_raises_no_alarm(fraud: Registry, tmp_path: Path) -> None:
    fraud.set_tag("fraud", "reviewed", "yes", version=2)
    fraud.set_description("fraud", "card fraud scorer")
    fraud.set_tag("fraud", "owner", "risk")
    fraud.transition("fraud", 2, "staging")
    fraud.transition("fraud", 2, "production")
    fraud.rollback("fraud")
    fraud.set_alias("fraud", "challenger", 3)
    fraud.delete_alias("fraud", "challenger")
    fraud.set_alias("fraud", "next", 3)
    fraud.delete_version("fraud", 3)  # drops @next too
    fraud.register("other", _content(tmp_path, "o.bin", b"other"))
    fraud.delete_model("other")
    fraud.register_dataset("iris", _content(tmp_path, "iris.csv", b"a,b\n"))
    report = fraud.verify_audit()
    assert report.ok and report.disagreements == (), report.problems()


def test_old_events_without_a_field_raise_no_false_alarm(fraud: Registry) -> None:
    """A registry written before events recorded the digest: the digest is simply unchecked."""
    rewrite_events(fraud, lambda e: {**e, "after": {k: v for k, v in e["after"].items()
                                                     if k != "digest"}}
                    if e["action"] == "version.register" else e)
    assert fraud.verify_audit().ok


def test_cli_names_every_disagreement_and_exits_1(
    fraud: Registry, registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELYARD_REGISTRY_URI", registry_url)
    runner = CliRunner()
    assert "audit chain intact" in runner.invoke(app, ["audit", "verify"]).stdout
    _sql(fraud, _model_version_sql("stage"), value="archived", number=1)
    _sql(fraud, _model_version_sql("stage"), value="production", number=3)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ("model 'fraud' version 1: stage: state says 'archived', log says 'production'"
            in result.stderr)
    assert "model 'fraud' version 3: stage: state says 'production', log says 'none'" in (
        result.stderr)
    assert "2 disagreement(s)" in result.stderr and "hint:" in result.stderr
    result = runner.invoke(app, ["audit", "verify", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["chain_ok"] is True
    assert [(d["number"], d["field"], d["state"], d["log"]) for d in report["disagreements"]] == [
        (1, "stage", "archived", "production"), (3, "stage", "production", "none")]


def test_a_write_committed_during_verify_is_no_false_alarm(fraud: Registry, tmp_path: Path) -> None:
    """The tables and the events are read in one snapshot (PostgreSQL reads each statement
    afresh by default), so a version registered in between is on neither side or on both."""
    with fraud.db.read() as conn:
        audit.snapshot(conn)
        state = current_facts(conn)
        fraud.register("fraud", _content(tmp_path, "w4.bin", b"weights 4"))  # commits now
        assert compare(state, logged_facts(audit.list_events(conn))) == []
    assert fraud.verify_audit().ok


def test_disagreement_describes_missing_rows() -> None:
    gone = Disagreement("version", "fraud", 2, "exists", False, True)
    assert gone.describe() == ("model 'fraud' version 2: the audit log records it but the "
                               "tables have no such row")


# -- helpers shared with the checkpoint tests ------------------------------------------------
def rewrite_events(reg: Registry, change: Any, *, drop_after: int | None = None) -> None:
    """What a database administrator can do without any secret: edit or drop events, then
    recompute every hash with the project's own function and move the head to match."""
    with reg.db.engine.begin() as conn:
        rows = [audit.to_event(r) for r in conn.execute(
            select(audit_events).order_by(audit_events.c.seq))]
        if drop_after is not None:
            conn.execute(audit_events.delete().where(audit_events.c.seq > drop_after))
            rows = rows[:drop_after]
        prev = audit.GENESIS_HASH
        for event in rows:
            fields = change({k: v for k, v in event.to_dict().items() if k != "hash"})
            fields.update(at=event.at, prev_hash=prev)
            prev = audit.event_hash(**fields)
            conn.execute(update(audit_events).where(audit_events.c.seq == event.seq).values(
                before=fields["before"], after=fields["after"], actor=fields["actor"],
                comment=fields["comment"], prev_hash=fields["prev_hash"], hash=prev))
        conn.execute(update(registry_state).values(event_count=len(rows), last_event_hash=prev))
