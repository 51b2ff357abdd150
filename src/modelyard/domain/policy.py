"""Approval policies and promotion requests: the rules, with no I/O.

A policy says how many approvals production needs, who may give them, which gates (expressions
of ``domain.expressions``) a candidate must pass, and whether the people closest to a version
(its requester and its creator) may approve it. Policies are immutable and numbered per model;
version 0 is the default that applies before anyone sets one. Keeping the rules here lets the
services, and the tests, ask "may this person decide?" without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from modelyard.domain import expressions
from modelyard.domain.codec import Record
from modelyard.domain.expression_eval import evaluate
from modelyard.errors import InvalidInput

SYSTEM_ACTOR = "modelyard"  # who rejects a request whose gates fail
MAX_APPROVALS = 20


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class RequestStatus(StrEnum):
    """``pending`` until one rejection, a cancel, or the N-th approval (which applies it)."""

    PENDING = "pending"
    REJECTED = "rejected"
    APPLIED = "applied"
    CANCELLED = "cancelled"


class RequestKind(StrEnum):
    PROMOTION = "promotion"  # staging -> production
    ROLLBACK = "rollback"  # a former production back to production


@dataclass(frozen=True)
class Policy(Record):
    name: str
    policy_version: int  # 0: the default, no policy set yet
    approvals: int = 1
    reviewers: tuple[str, ...] = ()
    gates: tuple[str, ...] = ()
    allow_self_approval: bool = False
    rollback_needs_approval: bool = False
    created_by: str | None = None
    created_at: datetime | None = None
    comment: str = ""
    computed = ("default",)

    @property
    def is_default(self) -> bool:
        return self.policy_version == 0

    default = is_default  # the name the JSON form gives it

    def rules(self) -> dict[str, Any]:
        """The content that decides (what the audit log records as before/after)."""
        return {
            "approvals": self.approvals,
            "reviewers": list(self.reviewers),
            "gates": list(self.gates),
            "allow_self_approval": self.allow_self_approval,
            "rollback_needs_approval": self.rollback_needs_approval,
        }


def default_policy(name: str) -> Policy:
    """One approval from anyone but the requester and the version's creator; no gates."""
    return Policy(name=name, policy_version=0)


def check_rules(
    *,
    approvals: int,
    reviewers: Iterable[str],
    gates: Iterable[str],
    allow_self_approval: bool,
    rollback_needs_approval: bool,
) -> dict[str, Any]:
    """Validate and normalise a policy's rules; a malformed gate is refused with its column."""
    if isinstance(approvals, bool) or not isinstance(approvals, int):
        raise InvalidInput(f"approvals must be a whole number, got {approvals!r}")
    if not 0 <= approvals <= MAX_APPROVALS:
        raise InvalidInput(f"approvals must be between 0 and {MAX_APPROVALS}, got {approvals}")
    names: list[str] = []
    for reviewer in reviewers:
        who = str(reviewer).strip()
        if not who:
            raise InvalidInput("a reviewer name cannot be empty")
        if who not in names:
            names.append(who)
    if names and approvals > len(names):
        raise InvalidInput(
            f"the policy needs {approvals} approvals but names only {len(names)} reviewer(s)",
            hint="add reviewers with --reviewer or lower --approvals",
        )
    if rollback_needs_approval and approvals == 0:
        raise InvalidInput("rollback cannot need approval when production needs 0 approvals")
    texts = [str(gate).strip() for gate in gates]
    for number, text in enumerate(texts, start=1):
        try:
            expressions.parse(text)
        except InvalidInput as exc:
            raise InvalidInput(f"gate {number}: {exc.message}", hint=exc.hint, gate=number,
                               **exc.details) from None
    return {
        "approvals": approvals,
        "reviewers": tuple(names),
        "gates": tuple(texts),
        "allow_self_approval": bool(allow_self_approval),
        "rollback_needs_approval": bool(rollback_needs_approval),
    }


def decision_refusal(
    policy: Policy, actor: str, decision: Decision, *, requester: str, creator: str
) -> str | None:
    """Why ``actor`` may not take ``decision`` on a request, or None if they may.

    Only the policy's reviewers decide (an empty list: anyone but the barred). The requester and
    the version's creator are barred from approving unless self-approval is allowed; a named
    reviewer who is barred may still reject.
    """
    if policy.reviewers and actor not in policy.reviewers:
        return (f"{actor} is not a reviewer of {policy.name!r} "
                f"(reviewers: {', '.join(policy.reviewers)})")
    roles = [role for role, who in (("requester", requester), ("creator", creator))
             if who == actor]
    barred = bool(roles) and not policy.allow_self_approval
    if barred and (decision is Decision.APPROVE or not policy.reviewers):
        return (f"{actor} is the {' and '.join(roles)} of this version and cannot "
                f"{decision.value} it: the policy of {policy.name!r} does not allow self-approval")
    return None


def approvals_reached(policy: Policy, approvals: int) -> bool:
    return approvals >= policy.approvals


@dataclass(frozen=True)
class GateResult(Record):
    """One gate's evidence: the expression, the values it saw, and the outcome."""

    gate: str
    passed: bool
    values: dict[str, Any]

    def describe(self) -> str:
        seen = ", ".join(f"{k}={v!r}" for k, v in sorted(self.values.items()))
        return f"{self.gate!r} {'passed' if self.passed else 'failed'}" + (
            f" ({seen})" if seen else "")


def evaluate_gates(
    gates: Iterable[str], candidate: Mapping[str, Any], production: Mapping[str, Any] | None
) -> list[GateResult]:
    """Evaluate each gate on a version's filter context, ``production.*`` bound to the current
    production's (or to nothing, so no-regression gates pass when there is none)."""
    ctx = {**candidate, expressions.PRODUCTION: dict(production) if production else None}
    results = []
    for gate in gates:
        outcome = evaluate(expressions.parse(gate), ctx)
        results.append(GateResult(gate, outcome.passed, outcome.values))
    return results


def gate_failures(results: Iterable[GateResult]) -> str:
    """'' when all passed, else one line naming each failed gate and what it saw."""
    return "; ".join(r.describe() for r in results if not r.passed)


@dataclass(frozen=True)
class DecisionRecord(Record):
    actor: str
    decision: str
    comment: str
    at: datetime


@dataclass(frozen=True)
class PromotionRequest(Record):
    """A request to put one version in production, and everything that decided it."""

    id: int
    name: str
    version: int
    digest: str
    kind: str
    policy_version: int
    status: str
    requested_by: str
    requested_at: datetime
    comment: str
    production_version: int | None  # production when the gates were evaluated
    gates: list[GateResult]
    decisions: list[DecisionRecord] = field(default_factory=list)
    closed_by: str | None = None
    closed_at: datetime | None = None
    close_reason: str = ""
    computed = ("gates_passed", "approvals")

    @property
    def approvals(self) -> list[str]:
        return [d.actor for d in self.decisions if d.decision == Decision.APPROVE]

    @property
    def gates_passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass(frozen=True)
class ChainReport(Record):
    """The audit chain recomputed: how many events, and the first bad one if any."""

    checked: int
    bad_seq: int | None
    reason: str
    computed: ClassVar[tuple[str, ...]] = ("ok",)  # AuditReport adds to it

    @property
    def ok(self) -> bool:
        return self.bad_seq is None
