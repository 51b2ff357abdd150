"""The registry's tables reduced to the facts the audit log records, for ``audit verify``.

Read in the same snapshot as the events (see ``audit.snapshot``) so a write committed in
between cannot look like tampering. Shapes match ``domain.history.logged_facts``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from modelyard.domain.audit_report import Facts
from modelyard.domain.history import DATASET_FIELDS, POLICY_FIELDS, VERSION_FIELDS
from modelyard.storage.sql import access_schema
from modelyard.storage.sql.access_repository import secret_fingerprint
from modelyard.storage.sql.datasets_schema import dataset_versions, datasets
from modelyard.storage.sql.governance_schema import model_policies
from modelyard.storage.sql.schema import aliases, model_versions, models


def current_facts(conn: Connection) -> Facts:
    """Every model, version (deleted ones too), alias, policy, dataset version, user and
    token as stored."""
    facts: Facts = {}
    names: dict[int, str] = {}
    for m in conn.execute(select(models)):
        names[int(m.id)] = m.name
        facts[("model", m.name, None)] = {
            "exists": True, "deleted": m.deleted_at is not None, "description": m.description,
            "tags": _json(m.tags), "last_version": int(m.last_version), "policy_version": 0,
        }
    versions: dict[int, tuple[str, int]] = {}
    for v in conn.execute(select(model_versions)):
        name, number = names[int(v.model_id)], int(v.version)
        versions[int(v.id)] = (name, number)
        row = {key: getattr(v, key) for key in VERSION_FIELDS}
        row.update(size=int(v.size), file_count=int(v.file_count), **{k: _json(row[k]) for k in
                                        ("tags", "params", "metrics", "lineage")})
        facts[("version", name, number)] = {"exists": True, "deleted": v.deleted_at is not None,
                                            **row}
    for a in conn.execute(select(aliases)):
        name, number = versions[int(a.version_id)]
        facts[("model", name, None)]["@" + a.alias] = number
    latest = {int(r.model_id): int(r.top) for r in conn.execute(
        select(model_policies.c.model_id, func.max(model_policies.c.policy_version).label("top"))
        .group_by(model_policies.c.model_id))}
    for model_id, top in latest.items():
        facts[("model", names[model_id], None)]["policy_version"] = top
    for p in conn.execute(select(model_policies)):
        facts[("policy", names[int(p.model_id)], int(p.policy_version))] = {
            "exists": True, **{k: getattr(p, k) for k in POLICY_FIELDS}}
    dataset_names = {int(d.id): d.name for d in conn.execute(select(datasets))}
    for d in conn.execute(select(dataset_versions)):
        facts[("dataset", dataset_names[int(d.dataset_id)], int(d.version))] = {
            "exists": True, **{k: getattr(d, k) for k in DATASET_FIELDS}}
    _access_facts(conn, facts)
    return facts


def _access_facts(conn: Connection, facts: Facts) -> None:
    users: dict[int, str] = {}
    for u in conn.execute(select(access_schema.users)):
        users[int(u.id)] = u.name
        facts[("user", u.name, None)] = {"exists": True, "role": u.role,
                                         "disabled": u.disabled_at is not None}
    for t in conn.execute(select(access_schema.tokens)):
        facts[("token", t.id, None)] = {
            "exists": True, "user": users[int(t.user_id)], "revoked": t.revoked_at is not None,
            "expires_at": t.expires_at.isoformat() if t.expires_at else None,
            "fingerprint": secret_fingerprint(t.secret_hash)}


def _json(value: Any) -> Any:
    return {} if value is None else value

