"""Helpers shared by the web UI tests: a registry with something to look at, users of every
role, and a browser-like client (FastAPI's TestClient keeps cookies) signed in as one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from modelyard.domain.entities import AuditEvent
from modelyard.domain.principal import Role
from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database
from server.conftest import Served, add_user

ROLES = {"bo": Role.REVIEWER, "cy": Role.REVIEWER, "vi": Role.VIEWER, "carl": Role.CONTRIBUTOR}
CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')
SIGNIN_RE = re.compile(r'name="signin" value="([^"]+)"')


@dataclass(frozen=True)
class Seeded:
    """What ``seed`` made: the tokens of each user and the pending request's id."""

    tokens: dict[str, str]
    pending: int
    run_id: str


def seed(db: Database, store: ObjectStore, admin_token: str, work: Path) -> Seeded:
    """A model ``fraud`` with three versions from runs on a registered dataset, one in
    production through an applied request, a policy with gates, and a pending request for
    v3 (made by carl, so bo and cy may approve it); plus users of every role."""
    tokens = {"ana": admin_token} | {name: add_user(db, store, name, role)
                                     for name, role in ROLES.items()}
    ana = Registry(db, store, user="ana")
    data = work / "customers.csv"
    data.write_text("id,amount\n1,10\n2,20\n")
    ana.register_dataset("customers", data, description="card transactions")
    run_id = ""
    for number, auc in enumerate((0.82, 0.88, 0.91), start=1):
        run = ana.create_run("fraud", name=f"gbm-{number}",
                             git={"commit": f"{number:040x}", "branch": "main", "dirty": False},
                             environment={"python": "3.11.9", "platform": "linux",
                                          "packages": {"scikit-learn": "1.5.0"}})
        ana.log_params(run.run_id, {"lr": 0.1 * number, "max_depth": 6})
        for step in range(3):
            ana.log_metrics(run.run_id, {"auc": auc - 0.05 * (2 - step)}, step=step)
        ana.record_run_input(run.run_id, "datasets:/customers/1")
        ana.end_run(run.run_id)
        model = work / f"model-{number}"
        model.mkdir()
        (model / "weights.bin").write_bytes(bytes([number]) * 256)
        (model / "config.json").write_text(f'{{"trees": {100 * number}}}')
        parent = f"fraud/{number - 1}" if number > 1 else None
        ana.register("fraud", model, run=run.run_id, parent=parent,
                     description=f"gradient boosting, round {number}")
        run_id = run.run_id
    ana.set_policy("fraud", approvals=1, reviewers=["bo", "cy"], gates=["metrics.auc >= 0.8"],
                   comment="one reviewer, auc floor")
    ana.set_alias("fraud", "champion", 2)
    for number in (1, 2, 3):
        ana.transition("fraud", number, "staging", actor="carl")
    first = ana.request_promotion("fraud", 2, comment="better auc", actor="carl")
    ana.approve(first.id, comment="looks good", actor="bo")
    pending = ana.request_promotion("fraud", 3, comment="best so far", actor="carl")
    return Seeded(tokens, pending.id, run_id)


@dataclass
class Browser:
    """A TestClient with its own cookie jar, signed in (or not) as one user."""

    client: TestClient

    def sign_in(self, token: str) -> None:
        page = self.client.get("/login")
        nonce = SIGNIN_RE.search(page.text)
        assert nonce is not None, page.text
        answer = self.client.post("/login", data={"token": token, "signin": nonce.group(1),
                                                  "next": "/models"}, follow_redirects=False)
        assert answer.status_code == 303, answer.text

    def csrf(self, path: str = "/models") -> str:
        found = CSRF_RE.search(self.client.get(path).text)
        assert found is not None
        return found.group(1)


def audit_events(served: Served, action: str) -> list[AuditEvent]:
    reg = Registry(served.backend.db, served.backend.store, user="ana")
    return [e for e in reg.audit() if e.action == action]

