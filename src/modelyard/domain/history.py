"""Replay audit events into a model's lifecycle state.

``history --at`` and the state-machine tests both rely on this: the events alone must be
enough to say which version held production, and which aliases pointed where, at any time.
``audit verify`` replays the whole log the same way and compares the result with the tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from modelyard.domain.audit_report import Facts
from modelyard.domain.entities import AuditEvent, HistoryState


def replay(name: str, events: Iterable[AuditEvent], at: datetime | None = None) -> HistoryState:
    stages: dict[int, str] = {}
    aliases: dict[str, int] = {}
    deleted: list[int] = []
    seen: list[AuditEvent] = []
    for event in events:
        if at is not None and event.at > at:
            break
        seen.append(event)
        after = event.after or {}
        if event.version is not None and "stage" in after:
            stages[event.version] = str(after["stage"])
        if "alias" in after:
            target = after.get("version")
            if target is None:
                aliases.pop(str(after["alias"]), None)
            else:
                aliases[str(after["alias"])] = int(target)
        if event.action == "version.delete" and event.version is not None:
            deleted.append(event.version)
            stages.pop(event.version, None)
    production = next((v for v, s in stages.items() if s == "production"), None)
    return HistoryState(name, at, production, stages, aliases, deleted, seen)


VERSION_FIELDS = ("stage", "digest", "artifact_kind", "artifact_name", "size", "file_count",
                  "description", "tags", "params", "metrics", "lineage")
POLICY_FIELDS = ("approvals", "reviewers", "gates", "allow_self_approval",
                 "rollback_needs_approval")
ANNOTATIONS = ("tags.set", "tags.delete", "description.set")
VERSION_CHANGES = ("version.transition", "version.rollback", *ANNOTATIONS)
ACCESS_EVENTS = frozenset({"user.create", "user.role", "user.disable", "token.create",
                           "token.revoke"})
USER_FIELDS = ("role", "disabled")
TOKEN_FIELDS = ("user", "expires_at", "fingerprint")
DATASET_FIELDS = ("digest", "kind", "artifact_name", "size", "file_count", "source",
                  "description", "tags")


def logged_facts(events: Iterable[AuditEvent]) -> Facts:
    """What the whole log says the registry holds now, in the shape ``compare`` reads.

    Only fields an event actually carries are set, so events written by older versions
    (with fewer fields) leave those fields unchecked instead of raising false alarms.
    """
    facts: Facts = {}
    for event in events:
        after, name, number = event.after or {}, event.model, event.version
        action = event.action
        if action == "dataset.register" and "dataset" in after and "version" in after:
            data = facts.setdefault(("dataset", str(after["dataset"]), int(after["version"])), {})
            data.update({"exists": True, **{k: after[k] for k in DATASET_FIELDS if k in after}})
            continue
        if action in ACCESS_EVENTS:
            _access(facts, action, after)
            continue
        if name is None:
            continue
        if action == "model.rename" and "name" in (event.before or {}):
            _rename(facts, str((event.before or {})["name"]), name)
        model = facts.setdefault(("model", name, None), {"exists": True})
        if action == "model.create":
            created: dict[str, Any] = {"deleted": False, "policy_version": 0, "last_version": 0}
            model.update(created, **{k: after[k] for k in ("description", "tags") if k in after})
        elif action == "model.delete":
            model["deleted"] = True
        elif action == "policy.set" and "policy_version" in after:
            policy_version = int(after["policy_version"])
            model["policy_version"] = policy_version
            facts[("policy", name, policy_version)] = {
                "exists": True, **{k: after[k] for k in POLICY_FIELDS if k in after}}
        elif action.startswith("alias.") and "alias" in after:
            target = after.get("version")
            model["@" + str(after["alias"])] = None if target is None else int(target)
        elif number is None:
            if action in ANNOTATIONS:
                model.update(after)
        else:
            version = facts.setdefault(("version", name, number), {"exists": True})
            if action == "version.register":
                version.update({"deleted": False,
                                **{k: after[k] for k in VERSION_FIELDS if k in after}})
                if "last_version" in model:
                    model["last_version"] = max(int(model["last_version"]), number)
            elif action == "version.delete":
                version["deleted"] = True
            elif action in VERSION_CHANGES:
                version.update({k: v for k, v in after.items() if k in VERSION_FIELDS})
    return facts


def _access(facts: Facts, action: str, after: dict[str, Any]) -> None:
    """Users and tokens as their events left them: a row the log never created (an admin
    slipped into ``users``), a role or a token's secret changed behind its back, is then a
    disagreement like an edited version."""
    if action.startswith("user.") and "user" in after:
        user = facts.setdefault(("user", str(after["user"]), None), {"exists": True})
        if action == "user.create":
            user["disabled"] = False
        user.update({k: after[k] for k in USER_FIELDS if k in after})
    elif "token" in after:
        token = facts.setdefault(("token", str(after["token"]), None), {"exists": True})
        if action == "token.create":
            token.update(revoked=False, **{k: after[k] for k in TOKEN_FIELDS if k in after})
        else:
            token["revoked"] = True


def _rename(facts: Facts, old: str, new: str) -> None:
    """Move what the log said of the model under ``old`` (itself, its versions and policies)
    to ``new``: the tables hold it under the new name, and the old one is free."""
    for subject in [s for s in facts if s[1] == old and s[0] != "dataset"]:
        kind, _, number = subject
        facts[(kind, new, number)] = facts.pop(subject)


def former_productions(events: list[AuditEvent]) -> list[int]:
    """Versions that held production, most recent first, each once."""
    seen: list[int] = []
    for event in reversed(events):
        held = (event.after or {}).get("stage") == "production"
        if held and event.version is not None and event.version not in seen:
            seen.append(event.version)
    return seen
