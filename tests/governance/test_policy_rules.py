"""The pure policy rules: validation, who may decide, gates with and without production."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.domain.policy import (
    Decision,
    Policy,
    approvals_reached,
    check_rules,
    decision_refusal,
    default_policy,
    evaluate_gates,
    gate_failures,
)
from modelyard.errors import InvalidInput

RULES: dict[str, Any] = dict(approvals=1, reviewers=(), gates=(), allow_self_approval=False,
                             rollback_needs_approval=False)


def rules(**changes: Any) -> dict[str, Any]:
    return check_rules(**{**RULES, **changes})


def test_default_policy_is_one_approval_from_anyone_unbarred() -> None:
    policy = default_policy("fraud")
    assert policy.is_default and policy.policy_version == 0
    assert policy.rules() == {"approvals": 1, "reviewers": [], "gates": [],
                              "allow_self_approval": False, "rollback_needs_approval": False}
    assert policy.to_dict()["default"] is True and policy.to_dict()["created_at"] is None


def test_rules_are_normalised() -> None:
    assert rules(reviewers=[" bob ", "cy", "bob"], approvals=2)["reviewers"] == ("bob", "cy")
    assert rules(gates=[" metrics.auc >= 0.9 "])["gates"] == ("metrics.auc >= 0.9",)


@pytest.mark.parametrize(("changes", "message"), [
    ({"approvals": -1}, "between 0 and"),
    ({"approvals": 21}, "between 0 and"),
    ({"approvals": True}, "whole number"),
    ({"approvals": 3, "reviewers": ["a", "b"]}, "needs 3 approvals but names only 2"),
    ({"reviewers": ["  "]}, "cannot be empty"),
    ({"approvals": 0, "rollback_needs_approval": True}, "rollback cannot need approval"),
])
def test_impossible_or_malformed_rules_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        rules(**changes)


def test_a_malformed_gate_is_refused_with_its_number_and_column() -> None:
    with pytest.raises(InvalidInput) as info:
        rules(gates=["metrics.auc >= 0.9", "metrics.auc >= = 1"])
    assert info.value.message.startswith("gate 2: invalid expression at column 16")
    assert info.value.details["gate"] == 2 and info.value.details["position"] == 16


def refusal(policy: Policy, actor: str, decision: Decision = Decision.APPROVE) -> str | None:
    return decision_refusal(policy, actor, decision, requester="req", creator="author")


def test_requester_and_creator_cannot_approve_by_default() -> None:
    policy = default_policy("m")
    assert "requester" in (refusal(policy, "req") or "")
    assert "creator" in (refusal(policy, "author") or "")
    assert refusal(policy, "anyone") is None
    assert refusal(policy, "author", Decision.REJECT) is not None  # anyone *but* the barred


def test_named_reviewers_only_and_a_barred_reviewer_may_still_reject() -> None:
    policy = Policy("m", 1, reviewers=("bob", "author"))
    assert "not a reviewer" in (refusal(policy, "eve") or "")
    assert "not a reviewer" in (refusal(policy, "eve", Decision.REJECT) or "")
    assert refusal(policy, "bob") is None
    assert "creator" in (refusal(policy, "author") or "")
    assert refusal(policy, "author", Decision.REJECT) is None


def test_self_approval_when_allowed() -> None:
    policy = Policy("m", 1, allow_self_approval=True)
    assert refusal(policy, "req") is None and refusal(policy, "author") is None


def test_approvals_reached() -> None:
    policy = Policy("m", 1, approvals=2)
    assert not approvals_reached(policy, 1) and approvals_reached(policy, 2)


CANDIDATE = {"metrics": {"auc": 0.895}, "description": "", "params": {"max_depth": "12"}}
GATES = ["metrics.auc >= production.metrics.auc - 0.01", "has(description)",
         "params.max_depth <= 12"]


def test_gates_keep_evidence_against_production() -> None:
    results = evaluate_gates(GATES, CANDIDATE, {"metrics": {"auc": 0.91}})
    assert [r.passed for r in results] == [False, False, True]
    assert results[0].values == {"metrics.auc": 0.895, "production.metrics.auc": 0.91}
    failures = gate_failures(results)
    assert "'metrics.auc >= production.metrics.auc - 0.01' failed" in failures
    assert "has(description)" in failures and "max_depth" not in failures


def test_no_regression_gate_passes_without_production() -> None:
    results = evaluate_gates(GATES[:1], CANDIDATE, None)
    assert results[0].passed and results[0].values["production.metrics.auc"] is None
    assert gate_failures(results) == ""
