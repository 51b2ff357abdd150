"""Renaming a model and deleting tags, on real SQLite and PostgreSQL (the ``reg`` fixture).

A rename must carry the model's whole history to the new name (versions, aliases, stages,
policy, pending requests, audit events) and free the old name (webhooks:
``tests/webhooks/test_webhook_rename.py``); the
audit chain keeps the names events were recorded under, and ``audit verify`` still agrees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.domain.principal import Principal, Role
from modelyard.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from modelyard.services.registry import Registry
from modelyard.storage.sql import audit_log


def _as(reg: Registry, user: str, role: Role) -> Registry:
    return Registry(reg.db, reg.store, principal=Principal(user, frozenset({role})))


def _held_production(reg: Registry, name: str, model_dir: Path) -> None:
    """Two versions, 1 then 2 in production (1 now archived), an alias and a policy."""
    reg.register(name, model_dir, tags={"team": "risk"})
    (model_dir / "config.json").write_text('{"layers": 4}')
    reg.register(name, model_dir)
    reg.set_policy(name, approvals=0)
    for number in (1, 2):
        reg.transition(name, number, "staging")
        reg.transition(name, number, "production")
    reg.set_alias(name, "champion", 2)


def test_rename_carries_the_whole_model_and_frees_the_old_name(
        reg: Registry, model_dir: Path) -> None:
    _held_production(reg, "fraud", model_dir)
    before = [e.seq for e in reg.audit("fraud")]

    renamed = reg.rename_model("fraud", "fraud-v2")

    assert (renamed.name, renamed.latest_version, renamed.production_version,
            renamed.aliases, renamed.tags) == ("fraud-v2", 2, 2, {"champion": 2}, {})
    assert reg.get_version("models:/fraud-v2/production").version == 2
    assert reg.get_version("models:/fraud-v2@champion").version == 2
    assert reg.get_version("fraud-v2", 1).tags == {"team": "risk"}
    assert reg.get_policy("fraud-v2").approvals == 0
    with pytest.raises(NotFound):
        reg.get_model("fraud")
    with pytest.raises(NotFound):
        reg.get_version("models:/fraud/production")

    events = list(reg.audit("fraud-v2"))
    assert [e.seq for e in events][:-1] == before  # pre-rename events, then the rename
    assert {e.model for e in events[:-1]} == {"fraud"}  # as they were recorded
    last = events[-1]
    assert (last.action, last.model, last.before, last.after, last.actor) == (
        "model.rename", "fraud-v2", {"name": "fraud"}, {"name": "fraud-v2"}, "alice")

    history = reg.history("fraud-v2")
    assert (history.production, history.stages, history.aliases) == (
        2, {1: "archived", 2: "production"}, {"champion": 2})
    assert reg.rollback("fraud-v2").version == 1  # knows 1 held production before
    assert reg.verify_audit().ok, reg.verify_audit().problems()

    reg.create_model("fraud")  # the old name is free, and its history starts afresh
    assert [e.action for e in reg.audit("fraud")] == ["model.create"]
    assert reg.verify_audit().ok, reg.verify_audit().problems()


def test_a_name_given_up_and_taken_again_keeps_each_models_events_apart(
        reg: Registry, model_dir: Path) -> None:
    reg.register("a", model_dir)
    reg.rename_model("a", "b")  # model 1 is now b
    reg.register("a", model_dir)  # model 2 takes the name a
    reg.set_tag("a", "owner", "two")
    reg.rename_model("a", "c")  # model 2 is now c
    reg.rename_model("b", "a")  # model 1 takes its first name back
    reg.set_tag("a", "owner", "one")

    one = [(e.action, e.model) for e in reg.audit("a")]
    assert one == [("model.create", "a"), ("version.register", "a"), ("model.rename", "b"),
                   ("model.rename", "a"), ("tags.set", "a")]
    two = [(e.action, e.model) for e in reg.audit("c")]
    assert two == [("model.create", "a"), ("version.register", "a"), ("tags.set", "a"),
                   ("model.rename", "c")]
    with reg.db.read() as conn:
        assert [(n, end is None) for n, _, end in audit_log.model_spans(conn, "a")] == [
            ("a", True), ("b", False), ("a", False)]
    assert (reg.get_model("a").tags, reg.get_model("c").tags) == (
        {"owner": "one"}, {"owner": "two"})
    assert reg.verify_audit().ok, reg.verify_audit().problems()


def test_a_pending_request_follows_the_rename(reg: Registry, model_dir: Path) -> None:
    reg.register("fraud", model_dir)
    reg.transition("fraud", 1, "staging")
    request = reg.request_promotion("fraud", 1)  # the default policy: one approval
    reg.rename_model("fraud", "risk")

    [pending] = reg.list_requests("risk", status="pending")
    assert (pending.id, pending.name) == (request.id, "risk")
    applied = _as(reg, "rita", Role.REVIEWER).approve(request.id)
    assert applied.status == "applied"
    assert reg.get_version("models:/risk/production").version == 1
    assert reg.verify_audit().ok, reg.verify_audit().problems()


def test_rename_refusals_change_nothing(reg: Registry, model_dir: Path) -> None:
    reg.register("fraud", model_dir)
    reg.create_model("churn")
    reg.create_model("gone")
    reg.delete_model("gone")
    events = len(list(reg.audit()))

    with pytest.raises(AlreadyExists, match="'churn' already exists"):
        reg.rename_model("fraud", "churn")
    with pytest.raises(AlreadyExists, match="stays reserved"):
        reg.rename_model("fraud", "gone")
    with pytest.raises(AlreadyExists):
        reg.rename_model("fraud", "fraud")
    with pytest.raises(InvalidInput, match="invalid model name"):
        reg.rename_model("fraud", "my model")
    with pytest.raises(NotFound, match="did you mean 'fraud'"):
        reg.rename_model("frud", "other")
    with pytest.raises(NotFound):
        reg.rename_model("gone", "back")  # a deleted model is not renamed
    with pytest.raises(PermissionDenied, match="admin"):
        _as(reg, "carol", Role.CONTRIBUTOR).rename_model("fraud", "other")

    assert len(list(reg.audit())) == events
    assert reg.get_version("fraud", 1).name == "fraud"


def test_delete_tags_of_models_and_versions(reg: Registry, model_dir: Path) -> None:
    reg.register("fraud", model_dir, tags={"team": "risk", "owner": "ana", "tier": "1"})
    reg.set_tags("fraud", {"team": "risk", "domain": "payments"})
    contributor = _as(reg, "carol", Role.CONTRIBUTOR)

    contributor.delete_tag("fraud", "team")
    contributor.delete_tags("fraud", ["owner", "tier"], version=1)

    assert reg.get_model("fraud").tags == {"domain": "payments"}
    assert reg.get_version("fraud", 1).tags == {"team": "risk"}
    assert reg.search_versions("tags.owner = 'ana'") == []  # the search index follows
    model_event, version_event = [e for e in reg.audit("fraud") if e.action == "tags.delete"]
    assert (model_event.version, model_event.actor, model_event.before, model_event.after) == (
        None, "carol", {"tags": {"team": "risk", "domain": "payments"}},
        {"tags": {"domain": "payments"}})
    assert (version_event.version, version_event.after) == (1, {"tags": {"team": "risk"}})
    assert reg.verify_audit().ok, reg.verify_audit().problems()


def test_deleting_a_missing_tag(reg: Registry, model_dir: Path) -> None:
    reg.register("fraud", model_dir, tags={"team": "risk"})
    events = len(list(reg.audit("fraud")))

    with pytest.raises(NotFound, match="tag 'teem' of version 1 of 'fraud'") as refused:
        reg.delete_tags("fraud", ["team", "teem"], version=1)
    assert "did you mean 'team'" in (refused.value.hint or "")
    with pytest.raises(NotFound, match="tag 'team' of model 'fraud'"):
        reg.delete_tag("fraud", "team")
    reg.delete_tag("fraud", "team", missing_ok=True)  # MLflow's way: nothing to do
    with pytest.raises(NotFound):
        reg.delete_tag("nope", "team", missing_ok=True)  # but the model must exist
    with pytest.raises(InvalidInput, match="no tag names"):
        reg.delete_tags("fraud", [])
    with pytest.raises(InvalidInput, match="invalid tag name"):
        reg.delete_tag("fraud", "bad\nkey")
    with pytest.raises(PermissionDenied):
        _as(reg, "vic", Role.VIEWER).delete_tag("fraud", "team", version=1)

    assert reg.get_version("fraud", 1).tags == {"team": "risk"}
    assert len(list(reg.audit("fraud"))) == events


def test_lineage_descendants_follow_the_renamed_parent(reg: Registry, model_dir: Path,
                                                       tmp_path: Path) -> None:
    reg.register("base", model_dir)
    reg.register("tuned", model_dir, parent="base/1")
    reg.rename_model("base", "foundation")
    reg.register("tuned", model_dir, parent="foundation/1")
    (tmp_path / "other.bin").write_bytes(b"another model")
    reg.register("base", tmp_path / "other.bin")  # the freed name, another model's version 1

    found = reg.lineage("foundation", 1)
    assert [(d["name"], d["version"]) for d in found.descendants] == [("tuned", 1), ("tuned", 2)]
    assert reg.lineage("tuned", 1).parent["name"] == "base"  # as it was registered
    assert reg.lineage("base", 1).descendants == []
