"""A subscription to one model follows it through a rename, in order (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelyard.services.registry import Registry
from modelyard.services.webhook_delivery import WebhookSettings, Worker
from webhook_receiver import Receiver


def test_a_model_subscription_follows_the_rename_in_order(
        reg: Registry, hook_env: Receiver, model_dir: Path) -> None:
    reg.register("fraud", model_dir)
    hook, _ = reg.create_webhook(hook_env.url, ["*"], model="fraud")
    reg.set_tag("fraud", "team", "risk")
    reg.rename_model("fraud", "risk")
    reg.set_tag("risk", "team", "payments")
    reg.create_model("fraud")  # another model under the old name: not subscribed
    [listed] = reg.list_webhooks()
    assert (listed.model, listed.pending) == ("risk", 3)

    now = [datetime.now(UTC)]
    delivering = Worker(reg.db, WebhookSettings.from_environment(dict(os.environ)),
                        clock=lambda: now[0], jitter=lambda: 0.0)
    hook_env.statuses = [500]  # the event before the rename fails first ...
    try:
        assert [d.ok for d in delivering.run_once()] == [False]
        assert delivering.run_once() == []  # ... and the events after it wait for it
        now[0] += timedelta(hours=1)
        while delivering.run_once():
            pass
    finally:
        delivering.close()

    got = [json.loads(r.body) for r in hook_env.requests]
    assert [(e["type"], e["model"]) for e in got] == [
        ("tags.set", "fraud"), ("tags.set", "fraud"), ("model.rename", "risk"),
        ("tags.set", "risk")]
    assert got[2]["text"] == "[modelyard] model.rename risk fraud -> risk by alice"
    assert got[2]["data"]["before"] == {"name": "fraud"}
    delivered = [d.event_id for d in reg.list_deliveries(hook.id) if d.ok]  # newest first
    assert delivered == [e["id"] for e in reversed(got[1:])]
