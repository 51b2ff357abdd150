"""Two reviewers approving the same request at the same moment apply it exactly once.

Each reviewer gets their own ``Registry`` (own engine and connections, as two processes would)
and a barrier releases both approvals together, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modelyard.domain.policy import PromotionRequest
from modelyard.errors import InvalidTransition
from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database

REVIEWERS = ("bob", "cy")


def race(url: str, store: str, request_id: int) -> list[PromotionRequest | Exception]:
    """Both reviewers approve at once; each outcome is the request or the error raised."""
    registries = [Registry(Database(url), ObjectStore(store), user=r) for r in REVIEWERS]
    barrier = threading.Barrier(len(registries))
    outcomes: list[PromotionRequest | Exception] = []

    def approve(reg: Registry) -> None:
        barrier.wait()
        try:
            outcomes.append(reg.approve(request_id))
        except Exception as exc:  # asserted by the caller
            outcomes.append(exc)

    threads = [threading.Thread(target=approve, args=(r,)) for r in registries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for reg in registries:
        reg.close()
    return outcomes


@pytest.mark.parametrize("approvals", [1, 2])
def test_concurrent_approvals_apply_exactly_once(
    registry_url: str, tmp_path: Path, model_dir: Path, approvals: int
) -> None:
    store = str(tmp_path / "objects")
    with Registry(Database(registry_url), ObjectStore(store), user="ana") as reg:
        for number in (1, 2):
            reg.register("m", model_dir)
            reg.transition("m", number, "staging")
        reg.set_policy("m", approvals=1, reviewers=REVIEWERS)
        reg.approve(reg.request_promotion("m", 1).id, actor="bob")  # something to archive
        reg.set_policy("m", approvals=approvals, reviewers=REVIEWERS)
        request_id = reg.request_promotion("m", 2).id

    outcomes = race(registry_url, store, request_id)

    with Registry(Database(registry_url), ObjectStore(store), user="check") as reg:
        done = reg.get_request(request_id)
        production_moves = [e for e in reg.audit("m")
                            if e.version == 2 and (e.after or {}).get("stage") == "production"]
        assert done.status == "applied"
        assert len(production_moves) == 1
        assert reg.get_version("m", 1).stage == "archived"
        assert [v.version for v in reg.list_versions("m") if v.stage == "production"] == [2]
        assert reg.verify_audit().ok
    errors = [o for o in outcomes if isinstance(o, Exception)]
    if approvals == 1:  # the second approval finds the request already applied
        assert len(errors) == 1 and isinstance(errors[0], InvalidTransition)
        assert "applied, not pending" in str(errors[0])
        assert len(done.decisions) == 1
    else:  # both approvals count; whichever came second applied it
        assert errors == []
        assert sorted(done.approvals) == list(REVIEWERS)
        assert done.closed_by in REVIEWERS
