"""Webhooks end to end over a real loopback receiver, on SQLite and PostgreSQL: what is
delivered, signed how, retried and paused when, in which order, and by which worker."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelyard.domain.principal import Principal, Role
from modelyard.domain.webhooks import DestinationRefused, SignatureError, verify_signature
from modelyard.errors import InvalidInput, PermissionDenied
from modelyard.services.registry import Registry
from modelyard.services.webhook_delivery import WebhookSettings, Worker, check_destination
from modelyard.storage.sql import audit_log
from modelyard.storage.sql.database import Database, before_commit
from modelyard.storage.sql.webhooks_schema import webhooks as webhooks_table
from webhook_receiver import Receiver

README = (Path(__file__).parents[2] / "README.md").read_text()


def readme_verify() -> Callable[..., dict[str, Any]]:
    """The verification recipe exactly as README documents it."""
    section = README[README.index("**Verifying a delivery.**"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    verify: Callable[..., dict[str, Any]] = namespace["verify"]
    return verify


class Clock:
    """The worker's clock, moved by the test (retries are scheduled on it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def worker(reg: Registry, clock: Clock | None = None, **env: str) -> Worker:
    settings = WebhookSettings.from_environment({**os.environ, **env})
    return Worker(reg.db, settings, clock=clock or Clock(), jitter=lambda: 0.0)


def test_promotion_delivers_one_signed_transition(reg: Registry, hook_env: Receiver,
                                                  model_dir: Path) -> None:
    reg.register("fraud", model_dir)
    reg.set_policy("fraud", approvals=0)
    reg.transition("fraud", 1, "staging")
    hook, secret = reg.create_webhook(hook_env.url, ["version.transition"], model="fraud")
    reg.register("other", model_dir)
    reg.set_policy("other", approvals=0)
    reg.transition("other", 1, "staging")  # another model: not this subscription's
    reg.set_tag("fraud", "team", "risk")  # another event type
    reg.transition("fraud", 1, "production")
    delivering = worker(reg)
    try:
        made = delivering.run_once()
        assert delivering.run_once() == []
    finally:
        delivering.close()

    assert [(d.event_type, d.ok, d.attempt) for d in made] == [("version.transition", True, 1)]
    [got] = hook_env.requests
    event = readme_verify()(secret, got.headers["Modelyard-Signature"], got.body)
    audited = [e for e in reg.audit("fraud") if e.action == "version.transition"][-1]
    assert event == {
        "id": f"evt_{audited.seq}", "seq": audited.seq, "type": "version.transition",
        "model": "fraud", "version": 1, "actor": "alice", "via": None,
        "at": audited.at.isoformat(),
        "data": {"before": {"stage": "staging"}, "after": {"stage": "production"},
                 "comment": ""},
        "link": "https://registry.example.com/api/v1/get-version?name_or_uri=fraud&version=1",
        "audit_hash": audited.hash,
        "text": "[modelyard] version.transition fraud v1 staging -> production by alice"}
    assert got.headers["Modelyard-Event"] == "version.transition"
    assert got.headers["Modelyard-Event-Id"] == event["id"]
    assert got.headers["Content-Type"] == "application/json"
    [logged] = reg.list_deliveries(hook.id)
    assert (logged.status_code, logged.event_id, logged.response) == (
        200, event["id"], '{"received": 1}')


def test_a_nan_metric_reaches_the_receiver_as_strict_json(reg: Registry, hook_env: Receiver,
                                                          model_dir: Path) -> None:
    """JSON has no NaN: a diverged run's metric is spelt "NaN" so any receiver parses it."""
    reg.create_webhook(hook_env.url, ["version.register"])
    reg.register("fraud", model_dir, metrics={"loss": float("nan"), "top": float("inf")})
    delivering = worker(reg)
    try:
        assert [d.ok for d in delivering.run_once()] == [True]
    finally:
        delivering.close()
    [got] = hook_env.requests

    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    body = json.loads(got.body, parse_constant=refuse)
    assert body["data"]["after"]["metrics"] == {"loss": "NaN", "top": "Infinity"}


def test_fails_three_times_then_succeeds_on_the_fourth(reg: Registry, hook_env: Receiver
                                                       ) -> None:
    hook, _ = reg.create_webhook(hook_env.url, ["model.create"])
    reg.create_model("fraud")
    hook_env.statuses = [500, 503, 502]
    clock = Clock()
    delivering = worker(reg, clock)
    try:
        for _ in range(3):
            [failed] = delivering.run_once()
            assert not failed.ok
            assert delivering.run_once() == []  # backing off: nothing due yet
            clock.advance(3600)
        [delivered] = delivering.run_once()
    finally:
        delivering.close()

    assert delivered.ok and delivered.attempt == 4
    assert [r.headers["Modelyard-Attempt"] for r in hook_env.requests] == ["1", "2", "3", "4"]
    assert len({r.event["id"] for r in hook_env.requests}) == 1
    log = reg.list_deliveries(hook.id)  # newest first
    assert [(d.attempt, d.status_code, d.ok) for d in log] == [
        (4, 200, True), (3, 502, False), (2, 503, False), (1, 500, False)]
    assert all(d.latency_ms >= 0 for d in log)
    assert "HTTP 502" in log[1].error
    [listed] = reg.list_webhooks()
    assert (listed.status.value, listed.pending) == ("active", 0)


def test_an_attempt_lasts_at_most_its_timeouts_so_the_lease_outlives_it(
        reg: Registry, hook_env: Receiver) -> None:
    with pytest.raises(InvalidInput, match="MODELYARD_WEBHOOK_LEASE"):
        WebhookSettings.from_environment({"MODELYARD_WEBHOOK_TIMEOUT": "30",
                                          "MODELYARD_WEBHOOK_LEASE": "60"})
    reg.create_webhook(hook_env.url, ["model.create"])
    reg.create_model("fraud")
    hook_env.trickle = 0.05  # 64 KiB a byte at a time: nearly an hour to read it all
    delivering = worker(reg, MODELYARD_WEBHOOK_TIMEOUT="0.5", MODELYARD_WEBHOOK_LEASE="2")
    try:
        [delivered] = delivering.run_once()
    finally:
        delivering.close()
    assert (delivered.ok, delivered.status_code) == (True, 200)
    assert delivered.latency_ms < 2000  # within the lease: no second worker sent it again
    assert delivered.response and '{"received": 1}'.startswith(delivered.response)  # cut short


def test_backoff_grows_and_a_webhook_that_keeps_failing_is_paused(
        reg: Registry, hook_env: Receiver) -> None:
    hook, _ = reg.create_webhook(hook_env.url, ["*"])
    reg.create_model("fraud")
    hook_env.statuses = [500] * 100
    clock, started = Clock(), Clock().now
    delivering = worker(reg, clock, MODELYARD_WEBHOOK_RETRY_FOR="100",
                        MODELYARD_WEBHOOK_BACKOFF="10")
    attempts: list[float] = []
    try:
        started = clock.now
        while reg.list_webhooks()[0].status.value == "active" and len(attempts) < 20:
            if delivering.run_once():
                attempts.append((clock.now - started).total_seconds())
            else:
                clock.advance(1)
    finally:
        delivering.close()
    # 10 s doubling, times the jitter factor (0.5 for jitter 0); the fifth failure would
    # wait past the 100 s of retries, so the webhook is paused instead
    assert attempts == [0, 5, 15, 35, 75]
    paused = reg.list_webhooks()[0]
    assert paused.status.value == "paused" and paused.pending == 1
    assert paused.status_reason.startswith("gave up on evt_2 after 5 attempts")
    assert "HTTP 500" in paused.status_reason
    assert [e.action for e in reg.audit()][-1] == "webhook.pause"

    hook_env.statuses.clear()
    reg.enable_webhook(hook.id)
    delivering = worker(reg, clock)
    try:
        [delivered] = delivering.run_once()
    finally:
        delivering.close()
    assert delivered.ok and delivered.attempt == 6
    assert reg.list_webhooks()[0].pending == 0


def test_in_order_per_model_and_one_failing_model_does_not_hold_the_others(
        reg: Registry, hook_env: Receiver) -> None:
    reg.create_webhook(hook_env.url, ["tags.set"])
    for name in ("a", "b"):
        reg.create_model(name)
    for i in range(3):
        reg.set_tag("a", "step", str(i))
        reg.set_tag("b", "step", str(i))
    hook_env.statuses = [500]  # the first event, a's step 0, fails once
    clock = Clock()
    delivering = worker(reg, clock)
    try:
        first = delivering.run_once()
        clock.advance(3600)
        second = delivering.run_once()
    finally:
        delivering.close()
    order = [(r.event["model"], r.event["data"]["after"]["tags"]["step"])
             for r in hook_env.requests]
    assert order[0] == ("a", "0") and not first[0].ok
    assert order[1:4] == [("b", "0"), ("b", "1"), ("b", "2")]  # b went on meanwhile
    assert order[4:] == [("a", "0"), ("a", "1"), ("a", "2")]  # a waited, then in order
    assert all(d.ok for d in second)


def test_nothing_is_queued_for_a_change_that_rolled_back(reg: Registry, hook_env: Receiver,
                                                         model_dir: Path) -> None:
    hook, _ = reg.create_webhook(hook_env.url, ["*"])
    reg.register("fraud", model_dir)

    def fail(conn: object) -> None:
        raise RuntimeError("the commit fails after the events and their deliveries were written")

    with pytest.raises(RuntimeError), reg.db.transaction() as conn:
        audit_log.record(conn, at=datetime.now(UTC), actor="alice", action="model.create",
                         model="ghost")
        before_commit(conn, fail)  # runs after the audit log's own hook
    reg.disable_webhook(hook.id, reason="maintenance")
    reg.set_tag("fraud", "k", "v")  # queued while disabled
    [listed] = reg.list_webhooks()
    assert (listed.status.value, listed.status_reason, listed.pending) == (
        "disabled", "maintenance", 3)  # model.create, version.register, tags.set
    reg.enable_webhook(hook.id)
    delivering = worker(reg)
    try:
        made = delivering.run_once()
    finally:
        delivering.close()
    assert [d.event_type for d in made] == ["model.create", "version.register", "tags.set"]


def test_two_workers_deliver_each_event_once(reg: Registry, hook_env: Receiver) -> None:
    reg.create_webhook(hook_env.url, ["*"])
    names = ["m0", "m1", "m2"]
    for name in names:
        reg.create_model(name)
    reg.create_webhook(hook_env.url + "/m1", ["tags.set"], model="m1")
    for i in range(18):
        reg.set_tag(names[i % 3], "i", str(i))
    runners = [Worker(Database(reg.db.url), WebhookSettings.from_environment())
               for _ in range(2)]  # two workers, each with its own connections
    made: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            made[n].extend(f"{d.webhook_id}/{d.event_id}" for d in runners[n].run_once())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for runner in runners:
        runner.close()
        runner.db.dispose()
    assert not errors
    attempts = made[0] + made[1]
    assert len(attempts) == len(set(attempts)) == 21 + 6  # all to one, m1's tags to the other
    got = [(r.path, r.event["id"]) for r in hook_env.requests]
    assert len(got) == len(set(got)) == 27  # the receiver saw each event once per webhook
    assert all(r.headers["Modelyard-Attempt"] == "1" for r in hook_env.requests)
    for path in {p for p, _ in got}:  # and each model's events in seq order
        for name in names:
            seqs = [r.event["seq"] for r in hook_env.requests
                    if r.path == path and r.event["model"] == name]
            assert seqs == sorted(seqs)


def test_a_forged_or_replayed_signature_fails_the_documented_recipe(
        reg: Registry, hook_env: Receiver) -> None:
    hook, secret = reg.create_webhook(hook_env.url, ["model.create"])
    reg.create_model("fraud")
    delivering = worker(reg)
    try:
        delivering.run_once()
    finally:
        delivering.close()
    [got] = hook_env.requests
    header, body = got.headers["Modelyard-Signature"], got.body
    verify = readme_verify()
    stamp = int(header.split(",")[0].removeprefix("t="))
    assert verify(secret, header, body)["type"] == "model.create"
    assert verify_signature(secret, header, body) == stamp
    forged_body = body.replace(b'"fraud"', b'"fraue"')
    forged_mac = f"t={stamp},v1={'0' * 64}"
    restamped = header.replace(f"t={stamp}", f"t={stamp + 1}")  # a fresh time, an old MAC
    for bad_secret, bad_header, bad_body, now in [
            (secret, header, forged_body, None), (secret, forged_mac, body, None),
            (secret, restamped, body, None), ("whsec_" + "x" * 32, header, body, None),
            (secret, header, body, stamp + 301),  # replayed six minutes later
            (secret, header, body, stamp - 301), (secret, "v1=abc", body, None),
            (secret, "t=²,v1=" + "0" * 64, body, None)]:
        with pytest.raises(ValueError):
            verify(bad_secret, bad_header, bad_body, now=now)
        with pytest.raises(SignatureError):
            verify_signature(bad_secret, bad_header, bad_body, now=now)
    assert hook.id == 1


def test_a_url_outside_the_allow_list_is_refused(reg: Registry, hook_env: Receiver,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    port = hook_env.port
    for url, why in [
            ("https://hooks.example.com/x", "not in the webhook allow-list"),
            (f"http://127.0.0.1:{port + 1}/hooks/x", "not in the webhook allow-list"),
            (f"http://127.0.0.1:{port}/other", "not in the webhook allow-list"),
            (f"http://127.0.0.1:{port}/hooks/../admin", ". or .. path segments"),
            (f"http://user:pw@127.0.0.1:{port}/hooks/", "user name or password"),
            ("file:///etc/passwd", "expected http(s)")]:
        with pytest.raises(DestinationRefused, match=re.escape(why)):
            reg.create_webhook(url, ["model.create"])
    # loopback, link-local and metadata addresses by name or by default are refused
    monkeypatch.setenv("MODELYARD_WEBHOOK_ALLOW", f"http://localhost:{port}/, "
                       "http://169.254.169.254/, http://169.254.10.1/, http://[::1]/")
    fresh = Registry(reg.db, reg.store, user="alice")
    with pytest.raises(DestinationRefused, match="a loopback address"):
        fresh.create_webhook(f"http://localhost:{port}/", ["*"])
    with pytest.raises(DestinationRefused, match="cloud metadata address: never allowed"):
        fresh.create_webhook("http://169.254.169.254/latest/meta-data", ["*"])
    monkeypatch.setenv("MODELYARD_WEBHOOK_ALLOW", "hooks.internal, 10.0.0.0/8")
    settings = WebhookSettings.from_environment()
    for address in ("169.254.10.1", "127.0.0.1", "192.168.1.1", "fe80::1"):
        with pytest.raises(DestinationRefused):
            check_destination("https://hooks.internal/", settings.allow,
                              lambda host, port, a=address: [ipaddress.ip_address(a)])
    target, address = check_destination("https://hooks.internal/", settings.allow,
                                        lambda host, port: [ipaddress.ip_address("10.1.2.3")])
    assert (target.host, str(address)) == ("hooks.internal", "10.1.2.3")
    assert reg.list_webhooks() == []


def test_subscriptions_are_admin_only_and_secrets_are_sealed(
        reg: Registry, hook_env: Receiver) -> None:
    hook, secret = reg.create_webhook(hook_env.url, ["*"], secret="s" * 20)
    assert secret == "s" * 20
    with reg.db.read() as conn:
        stored = conn.execute(webhooks_table.select()).one()
    assert secret not in stored.secret and stored.secret
    assert "secret" not in reg.list_webhooks()[0].to_dict()
    contributor = Registry(reg.db, reg.store,
                           principal=Principal("carol", frozenset({Role.CONTRIBUTOR})))
    for call in (lambda: contributor.create_webhook(hook_env.url, ["*"]),
                 lambda: contributor.list_webhooks(), lambda: contributor.delete_webhook(1),
                 lambda: contributor.list_deliveries(hook.id)):
        with pytest.raises(PermissionDenied):
            call()
    reg.delete_webhook(hook.id)
    with reg.db.read() as conn:
        assert conn.execute(webhooks_table.select()).one().secret == ""
    assert reg.list_webhooks() == []


def test_a_destination_no_longer_allowed_pauses_the_webhook_at_once(
        reg: Registry, hook_env: Receiver) -> None:
    hook, _ = reg.create_webhook(hook_env.url, ["model.create"])
    reg.create_model("fraud")
    delivering = worker(reg, MODELYARD_WEBHOOK_ALLOW="https://hooks.example.com/")
    try:
        [refused] = delivering.run_once()
    finally:
        delivering.close()
    assert hook_env.requests == []  # nothing was sent
    assert (refused.ok, refused.status_code) == (False, None)
    [paused] = reg.list_webhooks()
    assert paused.status.value == "paused" and paused.pending == 1
    assert "not in the webhook allow-list" in paused.status_reason
    assert hook.id == paused.id
