"""Governance: per-model policies, promotion requests, reviewer decisions.

Production is reached only through a model's policy. ``transition(..., "production")`` asks
``check_direct_promotion`` (lifecycle holds this object) and is refused with
``ApprovalRequired`` unless the policy needs 0 approvals; otherwise a request is made, its
gates are evaluated once and kept as evidence, and the N-th approval applies the move in the
same transaction. Every decision takes the model's row lock first, and the request leaves
``pending`` by compare-and-set, so two reviewers approving at once apply it exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from modelyard.domain.history import former_productions
from modelyard.domain.names import MAX_ID, check_number
from modelyard.domain.paging import Page, check_max_results, collect, decode_token
from modelyard.domain.policy import (
    SYSTEM_ACTOR,
    Decision,
    DecisionRecord,
    GateResult,
    Policy,
    PromotionRequest,
    RequestKind,
    RequestStatus,
    approvals_reached,
    check_rules,
    decision_refusal,
    default_policy,
    evaluate_gates,
    gate_failures,
)
from modelyard.domain.principal import Actor, Permission
from modelyard.domain.stages import ROLLBACK_FROM, Stage, check_transition
from modelyard.errors import (
    AlreadyExists,
    ApprovalRequired,
    IntegrityError,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
)
from modelyard.services import moves
from modelyard.services.base import UseCase
from modelyard.services.operations import operation
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import governance_repository as gov
from modelyard.storage.sql import repository as repo


class Governance(UseCase):
    # -- policies -----------------------------------------------------------------------
    @operation(Permission.ADMIN)
    def set_policy(
        self, name: str, *, approvals: int = 1, reviewers: Iterable[str] = (),
        gates: Iterable[str] = (), allow_self_approval: bool = False,
        rollback_needs_approval: bool = False, comment: str = "", actor: str | None = None,
    ) -> Policy:
        """Make a new, immutable policy version for ``name`` (replacing all of its rules)."""
        who, now = self._actor(actor), self.clock()
        rules = check_rules(approvals=approvals, reviewers=reviewers, gates=gates,
                            allow_self_approval=allow_self_approval,
                            rollback_needs_approval=rollback_needs_approval)
        with self.db.transaction() as conn:
            model = self._model(conn, name)
            repo.lock_model(conn, model.id, now)
            before = self.policy_of(conn, model)
            number = before.policy_version + 1
            gov.insert_policy(conn, model_id=model.id, policy_version=number,
                              approvals=rules["approvals"], reviewers=list(rules["reviewers"]),
                              gates=list(rules["gates"]), comment=comment,
                              created_by=who.user,
                              created_at=now,
                              allow_self_approval=rules["allow_self_approval"],
                              rollback_needs_approval=rules["rollback_needs_approval"])
            policy = Policy(name=name, policy_version=number, created_by=who.user, created_at=now,
                            comment=comment, **rules)
            audit.record(conn, at=now, actor=who, action="policy.set", model=name,
                         before={"policy_version": before.policy_version, **before.rules()},
                         after={"policy_version": number, **policy.rules()}, comment=comment)
        return policy

    @operation(Permission.READ)
    def get_policy(self, name: str, policy_version: int | None = None) -> Policy:
        """The model's current policy (the default if none was set), or one past version."""
        with self.db.read() as conn:
            return self.policy_of(conn, self._model(conn, name), policy_version)

    def policy_of(self, conn: Connection, model: Any, policy_version: int | None = None) -> Policy:
        if policy_version is not None:
            policy_version = check_number(policy_version, "policy version", low=0,
                                          hint=f"see 'modelyard policy show {model.name}'")
        if policy_version == 0:
            return default_policy(model.name)
        row = gov.find_policy(conn, model.id, policy_version)
        if row is None and policy_version is not None:
            raise NotFound(f"model {model.name!r} has no policy version {policy_version}")
        if row is None:
            return default_policy(model.name)
        return Policy(
            name=model.name, policy_version=int(row.policy_version),
            approvals=int(row.approvals), reviewers=tuple(row.reviewers),
            gates=tuple(row.gates), allow_self_approval=bool(row.allow_self_approval),
            rollback_needs_approval=bool(row.rollback_needs_approval),
            created_by=row.created_by, created_at=row.created_at, comment=row.comment or "",
        )

    # -- what lifecycle asks before a move to production --------------------------------
    def check_direct_promotion(self, conn: Connection, model: Any, row: Any, actor: Actor) -> None:
        """Production needs the policy's approvals; with 0 the gates still apply, and the
        audit log records that this promotion was direct."""
        policy = self.policy_of(conn, model)
        subject = f"version {row.version} of {model.name!r}"
        if policy.approvals:
            raise ApprovalRequired(
                f"promoting {subject} to production needs {policy.approvals} approval(s) "
                f"under policy version {policy.policy_version}",
                hint=f"run 'modelyard request {model.name} {row.version}' and ask a reviewer "
                     "to approve it",
                name=model.name, version=int(row.version), approvals=policy.approvals,
            )
        production, results = self._evaluate(conn, model, row, policy)
        if failures := gate_failures(results):
            raise InvalidTransition(f"{subject} fails the policy's gates: {failures}")
        audit.record(conn, at=self.clock(), actor=actor, action="promotion.direct",
                     model=model.name, version=int(row.version),
                     after={"approvals_required": 0, "policy_version": policy.policy_version,
                            "production_version": production,
                            "gates": [r.to_dict() for r in results]},
                     comment="direct promotion: the policy needs 0 approvals")

    def check_direct_rollback(self, conn: Connection, model: Any, row: Any) -> None:
        """A policy can make rollback need approval too."""
        policy = self.policy_of(conn, model)
        if policy.rollback_needs_approval:
            raise ApprovalRequired(
                f"rolling back {model.name!r} to version {row.version} needs approval under "
                f"policy version {policy.policy_version}",
                hint=f"run 'modelyard request {model.name} {row.version}'",
                name=model.name, version=int(row.version),
            )

    def _evaluate(
        self, conn: Connection, model: Any, row: Any, policy: Policy
    ) -> tuple[int | None, list[GateResult]]:
        """The policy's gates on ``row``, against the current production (if any)."""
        candidate = self._versions(conn, [row], model.name)[0]
        current = repo.latest_in_stage(conn, model.id, Stage.PRODUCTION.value)
        production = self._versions(conn, [current], model.name)[0] if current else None
        results = evaluate_gates(policy.gates, candidate.filter_context(),
                                 production.filter_context() if production else None)
        return (production.version if production else None), results

    # -- requests -----------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def request_promotion(
        self, name: str, version: int | str, *, comment: str = "", actor: str | None = None
    ) -> PromotionRequest:
        """Ask for ``version`` to go to production; the gates are evaluated now and kept.

        A failing gate stores the request as rejected by the system (check ``status``). An
        archived former production can be requested too when the policy makes rollback need
        approval.
        """
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            model, row = self._resolve(conn, self._ref(name, version))
            repo.lock_model(conn, model.id, now)
            policy = self.policy_of(conn, model)
            kind = self._request_kind(conn, model, row, policy)
            pending = gov.pending_request_for(conn, row.id)
            if pending is not None:
                raise AlreadyExists(
                    f"version {row.version} of {name!r} already has pending request "
                    f"#{pending.id}", hint=f"see 'modelyard requests show {pending.id}'")
            production: int | None = None
            results: list[GateResult] = []
            if kind is RequestKind.PROMOTION:
                production, results = self._evaluate(conn, model, row, policy)
            failures = gate_failures(results)
            status = RequestStatus.REJECTED if failures else RequestStatus.PENDING
            request_id = gov.insert_request(
                conn, model_id=model.id, version_id=row.id, version=int(row.version),
                digest=row.digest, kind=kind.value, policy_version=policy.policy_version,
                status=status.value, requested_by=who.user, requested_at=now, comment=comment,
                production_version=production, gates=[r.to_dict() for r in results],
                closed_by=SYSTEM_ACTOR if failures else None,
                closed_at=now if failures else None,
                close_reason=f"gate failed: {failures}" if failures else "",
            )
            audit.record(conn, at=now, actor=who, action="request.create", model=name,
                         version=int(row.version), comment=comment,
                         after={"request": request_id, "kind": kind.value,
                                "status": status.value, "digest": row.digest,
                                "policy_version": policy.policy_version,
                                "production_version": production,
                                "gates": [r.to_dict() for r in results]})
            return self._load_request(conn, request_id)

    def _request_kind(
        self, conn: Connection, model: Any, row: Any, policy: Policy
    ) -> RequestKind:
        subject = f"version {row.version} of {model.name!r}"
        if row.stage == ROLLBACK_FROM.value and int(row.version) in former_productions(
                audit.list_events(conn, model=model.name)):
            if not policy.rollback_needs_approval:
                raise InvalidInput(
                    f"{subject} held production before; restoring it needs no approval",
                    hint=f"run 'modelyard rollback {model.name} --to {row.version}'")
            return RequestKind.ROLLBACK
        check_transition(Stage(row.stage), Stage.PRODUCTION, subject=subject)
        if policy.approvals == 0:
            raise InvalidInput(
                f"the policy of {model.name!r} needs no approval for production",
                hint=f"run 'modelyard transition {model.name} {row.version} production'")
        return RequestKind.PROMOTION

    @operation(Permission.REVIEW)
    def approve(
        self, request_id: int, *, comment: str = "", actor: str | None = None
    ) -> PromotionRequest:
        """Approve a pending request; the approval that reaches N applies it, atomically."""
        return self._decide(request_id, Decision.APPROVE, comment, actor)

    @operation(Permission.REVIEW)
    def reject(
        self, request_id: int, *, comment: str, actor: str | None = None
    ) -> PromotionRequest:
        """Reject a pending request (one rejection ends it); a reason is required."""
        if not comment.strip():
            raise InvalidInput("a rejection needs a comment saying why")
        return self._decide(request_id, Decision.REJECT, comment, actor)

    @operation(Permission.CONTRIBUTE)
    def cancel(
        self, request_id: int, *, comment: str = "", actor: str | None = None
    ) -> PromotionRequest:
        """Withdraw a pending request; only its requester may."""
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            request, model = self._lock_pending(conn, request_id, now)
            if who.user != request.requested_by:
                raise PermissionDenied(
                    f"only {request.requested_by} (the requester) can cancel request "
                    f"#{request_id}")
            self._close(conn, request, model, RequestStatus.CANCELLED, who, comment, now)
            return self._load_request(conn, request_id)

    @operation(Permission.READ)
    def get_request(self, request_id: int) -> PromotionRequest:
        """One request with its gate evidence and decisions."""
        with self.db.read() as conn:
            return self._load_request(conn, request_id)

    @operation(Permission.READ)
    def list_requests(
        self, name: str | None = None, *, status: str | None = None,
        max_results: int | None = None, page_token: str | None = None,
    ) -> Page[PromotionRequest]:
        """Requests, oldest first, optionally of one model and in one status."""
        limit, cursor = check_max_results(max_results), decode_token(page_token, "requests", 1)
        if status is not None and status not in set(RequestStatus):
            choices = ", ".join(s.value for s in RequestStatus)
            raise InvalidInput(f"unknown request status {status!r}: expected one of {choices}")
        with self.db.read() as conn:
            model_id = self._model(conn, name).id if name else None
            return collect(lambda after, n: self.load_requests(conn, gov.list_requests(
                conn, model_id=model_id, status=status, cursor=after, limit=n)),
                lambda r: (r.id,), limit, cursor, kind="requests")

    def _decide(
        self, request_id: int, decision: Decision, comment: str, actor: str | None
    ) -> PromotionRequest:
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            request, model = self._lock_pending(conn, request_id, now)
            policy = self.policy_of(conn, model)
            if decision is Decision.APPROVE and policy.policy_version != request.policy_version:
                raise InvalidTransition(
                    f"request #{request_id} was made under policy version "
                    f"{request.policy_version}, but the policy of {model.name!r} is now version "
                    f"{policy.policy_version}; the request must be made again",
                    hint=f"run 'modelyard cancel {request_id}', then "
                         f"'modelyard request {model.name} {request.version}'")
            row = repo.find_version(conn, model.id, int(request.version))
            if row is None:
                raise NotFound(f"version {request.version} of {model.name!r} was deleted")
            refusal = decision_refusal(policy, who.user, decision, requester=request.requested_by,
                                       creator=row.created_by)
            if refusal:
                raise PermissionDenied(refusal)
            if gov.has_decided(conn, request_id, who.user):
                raise AlreadyExists(f"{who.user} has already decided on request #{request_id}")
            gov.insert_decision(conn, request_id=request_id, actor=who.user,
                                decision=decision.value,
                                comment=comment, decided_at=now)
            approvals = gov.count_decisions(conn, request_id, Decision.APPROVE.value)
            audit.record(conn, at=now, actor=who, action=f"request.{decision.value}",
                         model=model.name, version=int(request.version), comment=comment,
                         after={"request": request_id, "approvals": approvals,
                                "approvals_required": policy.approvals})
            if decision is Decision.REJECT:
                self._close(conn, request, model, RequestStatus.REJECTED, who, comment, now)
            elif approvals_reached(policy, approvals):
                self._apply(conn, request, model, row, who, now)
            return self._load_request(conn, request_id)

    def _lock_pending(
        self, conn: Connection, request_id: int, now: datetime
    ) -> tuple[Any, Any]:
        """The request and its model, read again under the model's row lock; must be pending."""
        found = gov.find_request(conn, _request_id(request_id))
        if found is None:
            raise NotFound(f"request #{request_id} not found", hint="see 'modelyard requests list'")
        repo.lock_model(conn, int(found.model_id), now)
        request = gov.find_request(conn, request_id)
        if request is None or request.status != RequestStatus.PENDING:
            state = request.status if request is not None else "gone"
            raise InvalidTransition(f"request #{request_id} is {state}, not pending")
        model = self._model(conn, request.name)
        return request, model

    def _close(
        self, conn: Connection, request: Any, model: Any, status: RequestStatus, who: Actor,
        reason: str, now: datetime,
    ) -> None:
        if not gov.close_request(conn, int(request.id), status=status.value, actor=who.user,
                                 at=now, reason=reason):
            raise InvalidTransition(f"request #{request.id} is no longer pending")
        if status is not RequestStatus.REJECTED:  # a rejection was just audited as a decision
            audit.record(conn, at=now, actor=who, action=f"request.{status.value}",
                         model=model.name, version=int(request.version), comment=reason,
                         after={"request": int(request.id), "status": status.value})

    def _apply(
        self, conn: Connection, request: Any, model: Any, row: Any, who: Actor, now: datetime
    ) -> None:
        """The N-th approval: move the version to production (the request was the check)."""
        if row.digest != request.digest:
            raise IntegrityError(f"version {row.version} of {model.name!r} no longer has the "
                                 f"digest request #{request.id} approved")
        subject = f"version {row.version} of {model.name!r}"
        approvers = ", ".join(sorted({*self._approvers(conn, int(request.id))}))
        note = f"request #{request.id} approved by {approvers}"
        if request.kind == RequestKind.ROLLBACK:
            if row.stage != ROLLBACK_FROM.value:
                raise InvalidTransition(f"{subject} is {row.stage} now and cannot be restored")
            moves.archive_production(conn, model, who, now, f"rolled back to {row.version}")
            moves.set_stage(conn, model.name, row, Stage.PRODUCTION, who, now,
                            "version.rollback", note)
        else:
            check_transition(Stage(row.stage), Stage.PRODUCTION, subject=subject)
            moves.archive_production(conn, model, who, now, f"superseded by {row.version}")
            moves.set_stage(conn, model.name, row, Stage.PRODUCTION, who, now,
                            "version.transition", note)
        self._close(conn, request, model, RequestStatus.APPLIED, who, note, now)

    def _approvers(self, conn: Connection, request_id: int) -> list[str]:
        rows = gov.decisions_by_request(conn, [request_id]).get(request_id, [])
        return [r.actor for r in rows if r.decision == Decision.APPROVE]

    def _load_request(self, conn: Connection, request_id: int) -> PromotionRequest:
        row = gov.find_request(conn, _request_id(request_id))
        if row is None:
            raise NotFound(f"request #{request_id} not found", hint="see 'modelyard requests list'")
        return self.load_requests(conn, [row])[0]

    def load_requests(self, conn: Connection, rows: list[Any]) -> list[PromotionRequest]:
        decisions = gov.decisions_by_request(conn, [r.id for r in rows])
        return [
            PromotionRequest(
                id=int(r.id), name=r.name, version=int(r.version), digest=r.digest,
                kind=r.kind, policy_version=int(r.policy_version), status=r.status,
                requested_by=r.requested_by, requested_at=r.requested_at,
                comment=r.comment or "", production_version=r.production_version,
                gates=[GateResult(g["gate"], bool(g["passed"]), dict(g["values"]))
                       for g in r.gates],
                decisions=[DecisionRecord(d.actor, d.decision, d.comment or "", d.decided_at)
                           for d in decisions.get(int(r.id), [])],
                closed_by=r.closed_by, closed_at=r.closed_at, close_reason=r.close_reason or "",
            )
            for r in rows
        ]


def _request_id(request_id: int) -> int:
    """Ids beyond the BIGINT column would make the driver raise, not answer "not found"."""
    return check_number(request_id, "request id", high=MAX_ID,
                        hint="see 'modelyard requests list'")
