"""Policies, requests and decisions on real SQLite and PostgreSQL (the ``reg`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from modelyard.errors import (
    AlreadyExists,
    ApprovalRequired,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
)
from modelyard.services.registry import Registry

AUTHOR, REQUESTER = "ana", "rik"
NO_REGRESSION = "metrics.auc >= production.metrics.auc - 0.01"


def staged(reg: Registry, path: Path, name: str = "m", **fields: object) -> int:
    """Register a version as AUTHOR and move it to staging; returns its number."""
    version = reg.register(name, path, actor=AUTHOR, **fields)  # type: ignore[arg-type]
    reg.transition(name, version.version, "staging", actor=AUTHOR)
    return version.version


def promote(reg: Registry, name: str, version: int, *reviewers: str) -> None:
    request = reg.request_promotion(name, version, actor=REQUESTER)
    for reviewer in reviewers:
        request = reg.approve(request.id, actor=reviewer)
    assert request.status == "applied"


def actions(reg: Registry, name: str = "m") -> list[str]:
    return [e.action for e in reg.audit(name)]


def test_default_policy_needs_one_approval_from_someone_unbarred(
    reg: Registry, model_dir: Path
) -> None:
    staged(reg, model_dir)
    policy = reg.get_policy("m")
    assert (policy.policy_version, policy.approvals, policy.reviewers) == (0, 1, ())
    with pytest.raises(ApprovalRequired) as info:
        reg.transition("m", 1, "production", actor=AUTHOR)
    assert "modelyard request m 1" in (info.value.hint or "")
    assert reg.get_version("m", 1).stage == "staging"
    request = reg.request_promotion("m", 1, comment="ship", actor=REQUESTER)
    assert (request.status, request.policy_version, request.kind) == ("pending", 0, "promotion")
    assert request.digest == reg.get_version("m", 1).digest
    with pytest.raises(PermissionDenied, match="requester"):
        reg.approve(request.id, actor=REQUESTER)
    with pytest.raises(PermissionDenied, match="creator"):
        reg.approve(request.id, actor=AUTHOR)
    assert reg.get_request(request.id).decisions == []
    done = reg.approve(request.id, comment="looks right", actor="bob")
    assert done.status == "applied" and done.closed_by == "bob"
    assert [(d.actor, d.decision, d.comment) for d in done.decisions] == [
        ("bob", "approve", "looks right")]
    assert reg.get_version("m", 1).stage == "production"
    transition = [e for e in reg.audit("m") if e.after == {"stage": "production"}][-1]
    assert transition.actor == "bob" and f"request #{request.id}" in transition.comment


def test_applying_archives_the_previous_production(reg: Registry, model_dir: Path) -> None:
    for _ in range(2):
        promote(reg, "m", staged(reg, model_dir), "bob")
    assert reg.get_version("m", 1).stage == "archived"
    assert reg.get_model("m").production_version == 2


def test_zero_approvals_allow_direct_promotion_and_the_log_says_so(
    reg: Registry, model_dir: Path
) -> None:
    staged(reg, model_dir)
    reg.set_policy("m", approvals=0)
    reg.transition("m", 1, "production", actor=AUTHOR)
    direct = [e for e in reg.audit("m") if e.action == "promotion.direct"]
    assert len(direct) == 1 and direct[0].actor == AUTHOR
    assert direct[0].after is not None and direct[0].after["approvals_required"] == 0
    assert direct[0].after["policy_version"] == 1
    staged(reg, model_dir)
    with pytest.raises(InvalidInput, match="needs no approval"):
        reg.request_promotion("m", 2)


def test_direct_promotion_still_passes_the_gates(reg: Registry, model_dir: Path) -> None:
    staged(reg, model_dir, metrics={"auc": 0.8})
    reg.set_policy("m", approvals=0, gates=["metrics.auc >= 0.9"])
    with pytest.raises(InvalidTransition, match=r"fails the policy's gates.*metrics.auc=0.8"):
        reg.transition("m", 1, "production")
    assert reg.get_version("m", 1).stage == "staging"
    assert "promotion.direct" not in actions(reg)


def test_named_reviewers_each_decide_once_until_n(reg: Registry, model_dir: Path) -> None:
    staged(reg, model_dir)
    reg.set_policy("m", approvals=2, reviewers=["bob", "cy", "dee"])
    request = reg.request_promotion("m", 1, actor=REQUESTER)
    with pytest.raises(PermissionDenied, match="not a reviewer"):
        reg.approve(request.id, actor="eve")
    assert reg.approve(request.id, actor="bob").status == "pending"
    with pytest.raises(AlreadyExists, match="already decided"):
        reg.approve(request.id, actor="bob")
    with pytest.raises(AlreadyExists, match="already decided"):
        reg.reject(request.id, comment="changed my mind", actor="bob")
    assert reg.get_version("m", 1).stage == "staging"
    done = reg.approve(request.id, actor="cy")
    assert done.status == "applied" and done.approvals == ["bob", "cy"]
    with pytest.raises(InvalidTransition, match="applied, not pending"):
        reg.approve(request.id, actor="dee")


def test_self_approval_when_the_policy_allows_it(reg: Registry, model_dir: Path) -> None:
    staged(reg, model_dir)
    reg.set_policy("m", allow_self_approval=True)
    request = reg.request_promotion("m", 1, actor=AUTHOR)
    assert reg.approve(request.id, actor=AUTHOR).status == "applied"


def test_one_rejection_ends_the_request(reg: Registry, model_dir: Path) -> None:
    staged(reg, model_dir)
    reg.set_policy("m", approvals=2, reviewers=["bob", "cy", AUTHOR])
    request = reg.request_promotion("m", 1, actor=REQUESTER)
    reg.approve(request.id, actor="bob")
    with pytest.raises(InvalidInput, match="needs a comment"):
        reg.reject(request.id, comment=" ", actor="cy")
    with pytest.raises(PermissionDenied, match="creator"):
        reg.approve(request.id, actor=AUTHOR)
    done = reg.reject(request.id, comment="leaks the label", actor=AUTHOR)  # a reviewer may
    assert (done.status, done.closed_by, done.close_reason) == (
        "rejected", AUTHOR, "leaks the label")
    with pytest.raises(InvalidTransition, match="rejected, not pending"):
        reg.approve(request.id, actor="cy")
    assert reg.get_version("m", 1).stage == "staging"
    again = reg.request_promotion("m", 1, actor=REQUESTER)
    assert again.id != request.id and again.status == "pending"


def test_cancel_is_for_the_requester_and_one_pending_request_per_version(
    reg: Registry, model_dir: Path
) -> None:
    staged(reg, model_dir)
    request = reg.request_promotion("m", 1, actor=REQUESTER)
    with pytest.raises(AlreadyExists, match=f"pending request #{request.id}"):
        reg.request_promotion("m", 1, actor="bob")
    with pytest.raises(PermissionDenied, match="only rik"):
        reg.cancel(request.id, actor="bob")
    assert reg.cancel(request.id, comment="wrong version", actor=REQUESTER).status == "cancelled"
    assert actions(reg)[-1] == "request.cancelled"
    with pytest.raises(NotFound, match="request #999"):
        reg.approve(999, actor="bob")


def test_requests_only_from_staging(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir)
    with pytest.raises(InvalidTransition, match="move it to staging first"):
        reg.request_promotion("m", 1)
    assert reg.list_requests("m") == []


def test_a_changed_policy_makes_pending_requests_stale(reg: Registry, model_dir: Path) -> None:
    staged(reg, model_dir)
    request = reg.request_promotion("m", 1, actor=REQUESTER)
    reg.set_policy("m", approvals=1, reviewers=["bob"], comment="only bob now")
    with pytest.raises(InvalidTransition, match=r"policy version 0.*now version 1") as info:
        reg.approve(request.id, actor="bob")
    assert "modelyard request m 1" in (info.value.hint or "")
    assert reg.get_request(request.id).status == "pending"
    reg.cancel(request.id, actor=REQUESTER)
    promote(reg, "m", 1, "bob")


def test_policy_versions_are_immutable_and_audited(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir)
    first = reg.set_policy("m", approvals=2, gates=[NO_REGRESSION], comment="v1", actor="lead")
    second = reg.set_policy("m", approvals=1, reviewers=["bob"], actor="lead")
    assert (first.policy_version, second.policy_version) == (1, 2)
    assert reg.get_policy("m").to_dict() == second.to_dict()
    old = reg.get_policy("m", 1)
    assert old.approvals == 2 and old.gates == (NO_REGRESSION,) and old.comment == "v1"
    with pytest.raises(NotFound):
        reg.get_policy("m", 7)
    events = [e for e in reg.audit("m") if e.action == "policy.set"]
    assert [e.actor for e in events] == ["lead", "lead"]
    assert events[1].before is not None and events[1].before["approvals"] == 2
    assert events[1].after == {"policy_version": 2, **second.rules()}
    with pytest.raises(InvalidInput, match="gate 1: invalid expression at column"):
        reg.set_policy("m", gates=["metrics.auc >"])
    with pytest.raises(NotFound):
        reg.set_policy("ghost")
    assert reg.get_policy("m").policy_version == 2


def test_failing_no_regression_gate_is_rejected_by_the_system(
    reg: Registry, model_dir: Path
) -> None:
    staged(reg, model_dir, metrics={"auc": 0.9}, description="first")
    reg.set_policy("m", gates=[NO_REGRESSION, "has(description)"])
    first = reg.request_promotion("m", 1, actor=REQUESTER)
    assert first.status == "pending" and first.production_version is None
    assert first.gates[0].passed and first.gates[0].values["production.metrics.auc"] is None
    reg.approve(first.id, actor="bob")
    staged(reg, model_dir, metrics={"auc": 0.85}, description="worse")
    worse = reg.request_promotion("m", 2, actor=REQUESTER)
    assert (worse.status, worse.closed_by, worse.production_version) == (
        "rejected", "modelyard", 1)
    assert not worse.gates[0].passed and worse.gates[1].passed
    assert worse.gates[0].values == {"metrics.auc": 0.85, "production.metrics.auc": 0.9}
    assert "gate failed" in worse.close_reason and NO_REGRESSION in worse.close_reason
    with pytest.raises(InvalidTransition, match="rejected, not pending"):
        reg.approve(worse.id, actor="bob")
    staged(reg, model_dir, metrics={"auc": 0.895})  # within 0.01, but no description
    bare = reg.request_promotion("m", 3, actor=REQUESTER)
    assert [g.passed for g in bare.gates] == [True, False]
    reg.set_description("m", "retrained on May data", version=3)
    assert reg.request_promotion("m", 3, actor=REQUESTER).status == "pending"
    assert [r.status for r in reg.list_requests("m")] == ["applied", "rejected", "rejected",
                                                          "pending"]
    assert [r.version for r in reg.list_requests(status="rejected")] == [2, 3]
    with pytest.raises(InvalidInput, match="unknown request status"):
        reg.list_requests(status="approvedish")


def test_rollback_needs_no_approval_unless_the_policy_says_so(
    reg: Registry, model_dir: Path
) -> None:
    for _ in range(2):
        promote(reg, "m", staged(reg, model_dir), "bob")
    with pytest.raises(InvalidInput, match="needs no approval"):
        reg.request_promotion("m", 1)
    assert reg.rollback("m", actor="oncall").version == 1
    assert reg.audit("m")[-1].action == "version.rollback"
    reg.set_policy("m", rollback_needs_approval=True)
    with pytest.raises(ApprovalRequired) as info:
        reg.rollback("m", to=2, actor="oncall")
    assert "modelyard request m 2" in (info.value.hint or "")
    assert reg.get_model("m").production_version == 1
    request = reg.request_promotion("m", 2, comment="v1 misbehaves", actor="oncall")
    assert request.kind == "rollback" and request.gates == []
    assert reg.approve(request.id, actor="bob").status == "applied"
    assert reg.get_model("m").production_version == 2
    rollback = [e for e in reg.audit("m") if e.action == "version.rollback"][-1]
    assert rollback.version == 2 and rollback.actor == "bob"


def test_dossier_holds_what_justified_the_promotion(reg: Registry, model_dir: Path) -> None:
    staged(reg, model_dir, metrics={"auc": 0.93}, lineage={"run_id": "r1"})
    reg.set_policy("m", approvals=2, reviewers=["bob", "cy"], gates=[NO_REGRESSION])
    request = reg.request_promotion("m", 1, comment="ship", actor=REQUESTER)
    reg.approve(request.id, comment="ok", actor="bob")
    reg.approve(request.id, comment="fine", actor="cy")
    reg.set_policy("m", approvals=1)
    dossier = reg.dossier("m", 1)
    assert dossier["version"]["stage"] == "production"
    assert dossier["digest"] == reg.get_version("m", 1).digest
    assert dossier["lineage"] == {"run_id": "r1"}
    assert dossier["policy"]["policy_version"] == 2
    assert dossier["policies"]["1"]["reviewers"] == ["bob", "cy"]
    [entry] = dossier["requests"]
    assert entry["status"] == "applied" and entry["policy_version"] == 1
    assert entry["gates"][0]["gate"] == NO_REGRESSION and entry["gates"][0]["passed"]
    assert [(d["actor"], d["comment"]) for d in entry["decisions"]] == [("bob", "ok"),
                                                                        ("cy", "fine")]
    assert [t["after"]["stage"] for t in dossier["transitions"]] == ["staging", "production"]
    assert dossier["audit_chain"]["ok"] is True


def test_audit_lists_filters_and_verify_finds_an_altered_row(
    reg: Registry, model_dir: Path
) -> None:
    staged(reg, model_dir)
    reg.register("other", model_dir)
    events = reg.audit()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {e.model for e in reg.audit("m")} == {"m"}
    cutoff = events[2].at  # the staging move, alone in its transaction
    assert [e.seq for e in reg.audit(since=cutoff)] == [3, 4, 5]
    with pytest.raises(NotFound):
        reg.audit("ghost")
    assert reg.verify_audit().ok and reg.verify_audit().checked == len(events)
    with reg.db.transaction() as conn:
        conn.execute(text("UPDATE audit_events SET comment = 'nothing to see' WHERE seq = 2"))
    report = reg.verify_audit()
    assert not report.ok and report.bad_seq == 2 and "altered" in report.reason
