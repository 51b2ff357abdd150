"""The governed road from the command line: author + two reviewers via --user, then an auditor."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from modelyard.cli.main import app
from modelyard.storage.sql.database import normalize_url

Run = Callable[..., Result]


@pytest.fixture
def run(registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run(user, *args, code=0)``: the CLI against a fresh SQLite or PostgreSQL registry."""
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELYARD_REGISTRY_URI", registry_url)
    monkeypatch.delenv("MODELYARD_STORE_URI", raising=False)
    runner = CliRunner()

    def invoke(user: str, *args: str, code: int = 0) -> Result:
        result = runner.invoke(app, ["--user", user, *args])
        assert result.exit_code == code, result.output
        return result

    return invoke


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_author_and_two_reviewers_take_a_version_to_production(
    run: Run, model_dir: Path, tmp_path: Path
) -> None:
    run("ana", "register", "fraud", str(model_dir), "--metric", "auc=0.91",
        "--description", "first")
    run("ana", "transition", "fraud", "1", "staging")
    refused = run("ana", "transition", "fraud", "1", "production", code=1)
    assert "needs 1 approval" in refused.stderr
    assert "modelyard request fraud 1" in refused.stderr
    run("lead", "policy", "set", "fraud", "--approvals", "2", "--reviewer", "bob",
        "--reviewer", "cy", "--gate", "metrics.auc >= production.metrics.auc - 0.01",
        "--gate", "has(description)", "--comment", "two reviewers")
    policy = as_json(run("ana", "policy", "show", "fraud", "--json"))
    assert (policy["policy_version"], policy["approvals"], policy["reviewers"]) == (
        1, 2, ["bob", "cy"])
    made = run("ana", "request", "fraud", "1", "--comment", "ship it")
    assert "request #1" in made.stdout and made.stdout.count("pass ") == 2
    assert "production.metrics.auc=None" in made.stdout
    denied = run("ana", "approve", "1", code=1)
    assert "not a reviewer" in denied.stderr and "Traceback" not in denied.output
    assert "1 approval(s) so far" in run("bob", "approve", "1", "--comment", "ok").stdout
    twice = run("bob", "approve", "1", code=1)
    assert "already decided" in twice.stderr
    pending = as_json(run("ana", "requests", "show", "1", "--json"))
    assert pending["status"] == "pending" and pending["approvals"] == ["bob"]
    assert "is in production" in run("cy", "approve", "1").stdout
    assert as_json(run("ana", "versions", "show", "fraud", "1", "--json"))["stage"] == \
        "production"
    applied = as_json(run("ana", "requests", "list", "fraud", "--status", "applied", "--json"))
    assert [(r["id"], r["approvals"]) for r in applied] == [(1, ["bob", "cy"])]
    assert "applied" in run("ana", "requests", "list").stdout

    out = tmp_path / "dossier.json"
    run("auditor", "dossier", "fraud", "1", "-o", str(out))
    dossier = json.loads(out.read_text())
    assert [d["actor"] for d in dossier["requests"][0]["decisions"]] == ["bob", "cy"]
    assert dossier["policies"]["1"]["gates"][1] == "has(description)"
    assert as_json(run("auditor", "dossier", "fraud", "1"))["digest"] == dossier["digest"]
    events = as_json(run("auditor", "audit", "fraud", "--json"))
    assert {"policy.set", "request.create", "request.approve", "request.applied"} <= {
        e["action"] for e in events}
    since = events[-1]["at"]
    recent = as_json(run("auditor", "audit", "--since", since, "--json"))
    assert events[-1] in recent and len(recent) < len(events)
    assert "audit log of fraud" in run("auditor", "audit", "fraud").stdout
    assert "audit chain intact" in run("auditor", "audit", "verify").stdout


def test_a_failing_gate_exits_nonzero_with_the_reasons(run: Run, model_dir: Path) -> None:
    run("ana", "register", "fraud", str(model_dir), "--metric", "auc=0.8")
    run("ana", "transition", "fraud", "1", "staging")
    run("ana", "policy", "set", "fraud", "--gate", "metrics.auc >= 0.9")
    result = run("ana", "request", "fraud", "1", code=1)
    assert "FAIL 'metrics.auc >= 0.9'" in result.stdout
    assert "request #1 was rejected: gate failed" in result.stderr
    assert "metrics.auc=0.8" in result.stderr
    rejected = as_json(run("ana", "requests", "show", "1", "--json"))
    assert (rejected["status"], rejected["closed_by"]) == ("rejected", "modelyard")


def test_reject_needs_a_comment_and_cancel_is_the_requesters(run: Run, model_dir: Path) -> None:
    run("ana", "register", "fraud", str(model_dir))
    run("ana", "transition", "fraud", "1", "staging")
    run("ana", "request", "fraud", "1")
    assert "--comment" in run("bob", "reject", "1", code=2).output
    run("bob", "reject", "1", "--comment", "no holdout eval")
    shown = as_json(run("ana", "requests", "show", "1", "--json"))
    assert (shown["status"], shown["close_reason"]) == ("rejected", "no holdout eval")
    run("ana", "request", "fraud", "1")
    assert "only ana" in run("bob", "cancel", "2", code=1).stderr
    run("ana", "cancel", "2", "--comment", "retraining")
    assert as_json(run("ana", "requests", "list", "--status", "cancelled", "--json"))[0]["id"] == 2


def test_malformed_gate_is_refused_with_its_column(run: Run, model_dir: Path) -> None:
    run("ana", "register", "fraud", str(model_dir))
    result = run("ana", "policy", "set", "fraud", "--gate", "metrics.auc >=", code=1)
    assert "gate 1: invalid expression at column 15" in result.stderr
    assert as_json(run("ana", "policy", "show", "fraud", "--json"))["default"] is True


def test_audit_verify_names_the_altered_event(
    run: Run, registry_url: str, model_dir: Path
) -> None:
    run("ana", "register", "fraud", str(model_dir))
    run("ana", "transition", "fraud", "1", "staging")
    engine = create_engine(normalize_url(registry_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    result = run("auditor", "audit", "verify", code=1)
    assert "audit chain broken at event 2" in result.stderr
    assert "altered" in result.stderr and "Traceback" not in result.output
    report = as_json(run("auditor", "audit", "verify", "--json", code=1))
    assert (report["ok"], report["bad_seq"]) == (False, 2)
