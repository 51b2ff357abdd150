"""Webhooks through the server: the operations over REST and the remote client, and the
worker inside a real server process that is killed mid-delivery and restarted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from modelyard.client.remote import RemoteRegistry
from modelyard.domain.principal import Role
from modelyard.domain.webhooks import verify_signature
from modelyard.errors import InvalidInput, PermissionDenied
from modelyard.services.webhook_delivery import SecretBox
from server.conftest import LiveServer, Served, bearer
from webhook_receiver import Receiver, receiving


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with receiving() as running:
        monkeypatch.setenv("MODELYARD_WEBHOOK_KEY", SecretBox.new_key())
        monkeypatch.setenv("MODELYARD_WEBHOOK_ALLOW", f"http://127.0.0.1:{running.port}/")
        yield running


def test_webhooks_over_rest_and_the_remote_client(
        serve: Callable[..., Served], receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_WEBHOOK_WORKER", "0")  # this test's worker is its own
    served = serve()
    remote = RemoteRegistry.over(served.client)
    hook, secret = remote.create_webhook(receiver.url, ["version.transition"])
    assert secret.startswith("whsec_") and hook.events == ["version.transition"]
    assert [h.id for h in remote.list_webhooks()] == [hook.id]
    assert secret not in served.client.get("/api/v1/list-webhooks").text

    ping = remote.test_webhook(hook.id)
    assert (ping.ok, ping.status_code, ping.event_type) == (True, 200, "ping")
    [got] = receiver.requests
    verify_signature(secret, got.headers["Modelyard-Signature"], got.body)
    again = remote.redeliver(ping.id)
    assert (again.event_id, again.attempt, again.trigger.value) == (ping.event_id, 2,
                                                                    "redeliver")
    assert [d.id for d in remote.list_deliveries(hook.id)] == [again.id, ping.id]

    with pytest.raises(InvalidInput, match="not in the webhook allow-list"):
        remote.create_webhook("https://hooks.example.com/x", ["*"])
    refused = served.client.post("/api/v1/create-webhook",
                                 json={"url": "http://169.254.169.254/", "events": ["*"]})
    assert refused.status_code == 400
    assert set(refused.json()["error"]) == {"code", "message", "hint", "details"}

    viewer = served.token_for("vic", Role.CONTRIBUTOR)
    denied = served.client.get("/api/v1/list-webhooks", headers=bearer(viewer))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    served.client.headers.update(bearer(viewer))
    with pytest.raises(PermissionDenied):
        RemoteRegistry.over(served.client).disable_webhook(hook.id)


def test_a_server_killed_between_commit_and_delivery_delivers_after_restart(
        start_server: Callable[..., LiveServer], receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"MODELYARD_WEBHOOK_INTERVAL": "0.05", "MODELYARD_WEBHOOK_LEASE": "7",
                        "MODELYARD_WEBHOOK_TIMEOUT": "2"}.items():
        monkeypatch.setenv(name, value)
    receiver.holding = True  # the first delivery reaches the receiver and gets no answer
    server = start_server()
    with server.client(timeout=30) as client:
        made = client.post("/api/v1/create-webhook",
                           json={"url": receiver.url, "events": ["model.create"]})
        assert made.status_code == 200, made.text
        secret = made.json()[1]
        assert client.post("/api/v1/create-model", json={"name": "fraud"}).status_code == 200
        receiver.wait_for(1)
        server.kill()  # committed, sent, never answered and never logged
        receiver.holding = False
        receiver.hold.set()
        server.start()
        first, second = receiver.wait_for(2)
        assert first.event["id"] == second.event["id"]
        assert (first.event["type"], first.event["model"]) == ("model.create", "fraud")
        assert [first.headers["Modelyard-Attempt"], second.headers["Modelyard-Attempt"]] == [
            "1", "2"]
        verify_signature(secret, second.headers["Modelyard-Signature"], second.body)
        for _ in range(600):
            log = client.get("/api/v1/list-deliveries", params={"webhook_id": 1}).json()["items"]
            if log:
                break
            time.sleep(0.05)
        assert [(d["attempt"], d["ok"], d["status_code"]) for d in log] == [(2, True, 200)]
        assert client.get("/api/v1/list-webhooks").json()["items"][0]["pending"] == 0
    assert len(receiver.requests) == 2
