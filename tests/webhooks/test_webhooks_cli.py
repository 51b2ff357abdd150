"""``modelyard webhooks …`` and ``events worker --once`` on an embedded SQLite registry,
against a real loopback receiver: the secret is printed once, every command speaks --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from modelyard.cli.main import app
from modelyard.domain.webhooks import verify_signature
from webhook_receiver import Receiver


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_the_webhook_commands(cli_home: Path, hook_env: Receiver) -> None:
    created = as_json(run("webhooks", "create", hook_env.url, "--event", "model.create",
                          "--event", "tags.set", "--json"))
    secret, hook_id = created["secret"], str(created["id"])
    assert created["events"] == ["model.create", "tags.set"]
    listed = run("webhooks", "list")
    assert hook_env.url in listed.stdout and secret not in listed.stdout
    assert secret not in run("webhooks", "list", "--json").stdout

    run("models", "create", "fraud")
    worked = run("events", "worker", "--once")
    assert "model.create" in worked.stderr and "ok" in worked.stderr
    [got] = hook_env.requests
    verify_signature(secret, got.headers["Modelyard-Signature"], got.body)

    ping = as_json(run("webhooks", "test", hook_id, "--json"))
    assert ping["ok"] and ping["event_type"] == "ping"
    log = as_json(run("webhooks", "deliveries", hook_id, "--json"))
    assert [d["event_type"] for d in log] == ["ping", "model.create"]
    assert "200" in run("webhooks", "deliveries", hook_id).stdout
    again = as_json(run("webhooks", "redeliver", str(log[1]["id"]), "--json"))
    assert (again["event_id"], again["attempt"]) == (log[1]["event_id"], 2)
    assert len(hook_env.requests) == 3

    assert as_json(run("webhooks", "disable", hook_id, "--reason", "deploy freeze",
                       "--json"))["status"] == "disabled"
    run("tag", "fraud", "k=v")
    assert run("events", "worker", "--once").stderr == ""  # disabled: nothing sent
    assert "1 event(s) queued" in run("webhooks", "enable", hook_id).stdout
    run("events", "worker", "--once")
    assert hook_env.requests[-1].event["type"] == "tags.set"
    run("webhooks", "delete", hook_id)
    assert "no webhooks" in run("webhooks", "list").stdout

    refused = run("webhooks", "create", "https://elsewhere.example.com/", "--event", "*",
                  code=1)
    assert "not in the webhook allow-list" in refused.stderr
    assert len(run("webhooks", "key").stdout.strip()) == 44  # a Fernet key
