"""Explicit composition: one operation table, a principal, and no way around governance."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from sqlalchemy import text

import modelyard.services as services_pkg
from modelyard.domain.principal import Permission, Principal, Role
from modelyard.errors import ApprovalRequired, InvalidInput, PermissionDenied
from modelyard.services.base import Context
from modelyard.services.catalog import Catalog
from modelyard.services.datasets import Datasets
from modelyard.services.governance import Governance
from modelyard.services.lifecycle import Lifecycle
from modelyard.services.operations import OPERATIONS
from modelyard.services.registry import Registry

SERVICES = Path(services_pkg.__file__).parent


def test_every_public_registry_method_is_one_declared_operation() -> None:
    exposed = {n for n in dir(Registry) if not n.startswith("_")} - {
        "close", "db", "store", "principal", "user", "operations"}
    listed = Registry.operations()
    assert exposed == set(listed)
    parts = {op.part for op in listed.values()}
    declared_by_parts = {n for n, op in OPERATIONS.items() if op.part in parts}
    assert set(listed) == declared_by_parts, set(listed) ^ declared_by_parts
    for name, op in OPERATIONS.items():
        assert op.summary, f"{name} has no docstring saying what it does"
        assert isinstance(op.permission, Permission)


def test_only_the_moves_module_writes_a_stage() -> None:
    """Stage changes go through services/moves.py, whose callers ask governance first."""
    writers = []
    for path in SERVICES.rglob("*.py"):
        source = path.read_text()
        if re.search(r"update_version\([^)]*\bstage=", source, re.S):
            writers.append(path.relative_to(SERVICES).as_posix())
    assert writers == ["moves.py"]
    callers = sorted(p.relative_to(SERVICES).as_posix() for p in SERVICES.rglob("*.py")
                     if re.search(r"moves\.(set_stage|archive_production)\(", p.read_text()))
    assert callers == ["governance.py", "lifecycle.py"]


def test_lifecycle_cannot_exist_without_governance(reg: Registry) -> None:
    params = inspect.signature(Lifecycle.__init__).parameters
    assert params["governance"].annotation in ("Governance", Governance)
    assert params["governance"].default is inspect.Parameter.empty
    with pytest.raises(TypeError):
        Lifecycle(reg.ctx, Catalog(reg.ctx, Datasets(reg.ctx)))  # type: ignore[call-arg]


def test_a_lifecycle_built_on_its_own_still_asks_the_policy(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir)
    reg.transition("m", 1, "staging")
    catalog = Catalog(reg.ctx, Datasets(reg.ctx))
    alone = Lifecycle(reg.ctx, catalog, Governance(reg.ctx))
    with pytest.raises(ApprovalRequired):
        alone.transition("m", 1, "production")
    reg.set_policy("m", approvals=0)
    alone.transition("m", 1, "production")  # 0 approvals: direct, and audited as such
    reg.register("m", model_dir)
    reg.transition("m", 2, "staging")
    alone.transition("m", 2, "production")
    reg.set_policy("m", approvals=1, rollback_needs_approval=True)
    with pytest.raises(ApprovalRequired):
        alone.rollback("m")
    assert [e.action for e in reg.audit("m")].count("promotion.direct") == 2


def _as(reg: Registry, user: str, *roles: Role) -> Registry:
    return Registry(reg.db, reg.store, principal=Principal(user, frozenset(roles)))


def test_roles_decide_what_a_principal_may_do(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir)
    viewer = _as(reg, "vic", Role.VIEWER)
    assert viewer.get_version("m", 1).version == 1
    with pytest.raises(PermissionDenied, match=r"vic .*contribute"):
        viewer.register("m", model_dir)
    contributor = _as(reg, "cy", Role.CONTRIBUTOR)
    contributor.transition("m", 1, "staging")
    request = contributor.request_promotion("m", 1)
    with pytest.raises(PermissionDenied, match="review"):
        contributor.approve(request.id)
    with pytest.raises(PermissionDenied, match="admin"):
        contributor.set_policy("m", approvals=2)
    with pytest.raises(PermissionDenied, match="admin"):
        contributor.delete_version("m", 1)
    reviewer = _as(reg, "rev", Role.REVIEWER)
    assert reviewer.approve(request.id).status == "applied"
    assert reg.get_version("models:/m/production").version == 1


def test_acting_on_behalf_is_for_admins_and_records_both_names(
    reg: Registry, model_dir: Path
) -> None:
    contributor = _as(reg, "cy", Role.CONTRIBUTOR)
    with pytest.raises(PermissionDenied, match="on behalf"):
        contributor.register("m", model_dir, actor="bo")
    contributor.register("m", model_dir, actor="cy")  # naming yourself is not acting for others
    admin = _as(reg, "root", Role.ADMIN)
    admin.set_tag("m", "team", "risk", actor="bo")
    last = reg.audit("m")[-1]
    assert (last.actor, last.via) == ("bo", "root")
    assert reg.audit("m")[0].via is None
    with pytest.raises(InvalidInput, match="reserved"):
        admin.set_tag("m", "x", "y", actor="modelyard")
    assert reg.verify_audit().ok


def test_the_via_field_is_part_of_the_chain(reg: Registry, model_dir: Path) -> None:
    reg.register("m", model_dir, actor="bo")
    assert reg.verify_audit().ok
    with reg.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET via = 'mallory' WHERE via IS NOT NULL"))
    report = reg.verify_audit()
    assert not report.ok and "altered" in report.reason


def test_embedded_principal_has_every_role_and_a_checked_name(tmp_path: Path) -> None:
    assert Principal.embedded("ana").permissions == frozenset(Permission)
    for bad in ("", "ana\n", "a b", "-x"):
        with pytest.raises(InvalidInput):
            Principal.embedded(bad)
    assert Context.__dataclass_fields__.keys() >= {"db", "store", "principal", "clock"}
