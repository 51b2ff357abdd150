"""Promotion requests: the reviewer's queue, a request with its evidence, decisions."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response

from modelyard.domain.policy import Decision, Policy, PromotionRequest, decision_refusal
from modelyard.domain.principal import Permission
from modelyard.web import paths
from modelyard.web.views import (
    PAGE_SIZE,
    Posting,
    SignedIn,
    Visit,
    page_router,
    redirect,
    render,
    url,
)

routes = page_router()
STATUSES = ("pending", "applied", "rejected", "cancelled")


@dataclass(frozen=True)
class Standing:
    """Whether the visitor may approve or reject a request: None if they may, else why
    not. Only decides which buttons to show; the registry decides again on the post."""

    approve: str | None
    reject: str | None

    @property
    def may_act(self) -> bool:
        return self.approve is None or self.reject is None


def standing(v: Visit, request: PromotionRequest, policy: Policy, creator: str) -> Standing:
    """What the governance rules (``domain.policy``) say this visitor may do now."""
    if request.status != "pending":
        return Standing(*[f"the request is {request.status}"] * 2)
    if not v.can(Permission.REVIEW):
        roles = ", ".join(sorted(v.principal.roles))
        return Standing(*[f"your role ({roles}) does not review requests"] * 2)
    if v.user in (d.actor for d in request.decisions):
        return Standing(*["you have already decided on this request"] * 2)
    approve = decision_refusal(policy, v.user, Decision.APPROVE,
                               requester=request.requested_by, creator=creator)
    if approve is None and policy.policy_version != request.policy_version:
        approve = (f"the policy changed since the request (now version "
                   f"{policy.policy_version}): it must be made again")
    reject = decision_refusal(policy, v.user, Decision.REJECT,
                              requester=request.requested_by, creator=creator)
    return Standing(approve, reject)


def _standings(v: Visit, requests: list[PromotionRequest]) -> dict[int, Standing]:
    policies: dict[str, Policy] = {}
    found = {}
    for r in requests:
        if r.name not in policies:
            policies[r.name] = v.registry.get_policy(r.name)
        creator = v.registry.get_version(r.name, r.version).created_by
        found[r.id] = standing(v, r, policies[r.name], creator)
    return found


@routes.get("/requests")
def requests_page(request: Request, v: SignedIn, status: str = "pending",
                  page_token: str | None = None) -> Response:
    """Pending requests with the visitor's queue first (those they may decide on), or the
    requests in another status."""
    found = v.registry.list_requests(status=status, max_results=PAGE_SIZE,
                                     page_token=page_token)
    stands = _standings(v, list(found)) if status == "pending" else {}
    queue = [r for r in found if r.id in stands and stands[r.id].may_act]
    others = [r for r in found if r not in queue]
    return render(request, "requests.html", status=status, statuses=STATUSES, queue=queue,
                  others=others, next_token=found.next_page_token)


@routes.get("/requests/{request_id}")
def request_page(request: Request, v: SignedIn, request_id: int) -> Response:
    """A request: the version, the gate evidence, the decisions, and the visitor's buttons."""
    reg = v.registry
    found = reg.get_request(request_id)
    version = reg.get_version(found.name, found.version)
    policy = reg.get_policy(found.name)
    judged = reg.get_policy(found.name, found.policy_version)
    return render(request, "request.html", req=found, version=version, policy=judged,
                  standing=standing(v, found, policy, version.created_by))


@routes.post("/requests/{request_id}/approve")
def approve(posted: Posting, request_id: int) -> Response:
    reg = posted.visit.registry
    done = posted.act("approve", lambda: reg.approve(request_id, comment=posted.get("comment")))
    notice = "applied" if done.status == "applied" else "approved"
    return redirect(url(paths.request(request_id), notice=notice))


@routes.post("/requests/{request_id}/reject")
def reject(posted: Posting, request_id: int) -> Response:
    reg = posted.visit.registry
    posted.act("reject", lambda: reg.reject(request_id, comment=posted.get("comment")))
    return redirect(url(paths.request(request_id), notice="rejected"))
