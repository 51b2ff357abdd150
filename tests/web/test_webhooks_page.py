"""The web UI's webhooks page: an admin sees subscriptions and their latest deliveries; it
is in an admin's navigation only, and refused to others."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from web_support import Browser

from modelyard.domain.principal import Role
from modelyard.services.registry import Registry
from modelyard.services.webhook_delivery import SecretBox
from server.conftest import Served
from webhook_receiver import Receiver, receiving

Open = Callable[[str | None], Browser]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with receiving() as running:
        monkeypatch.setenv("MODELYARD_WEBHOOK_KEY", SecretBox.new_key())
        monkeypatch.setenv("MODELYARD_WEBHOOK_ALLOW", f"http://127.0.0.1:{running.port}/")
        monkeypatch.setenv("MODELYARD_WEBHOOK_WORKER", "0")
        yield running


def test_admins_see_subscriptions_and_recent_deliveries(
        receiver: Receiver, served: Served, browser: Open) -> None:
    reg = Registry(served.backend.db, served.backend.store, user="ana")
    hook, secret = reg.create_webhook(receiver.url, ["version.transition"])
    receiver.statuses = [503]
    reg.test_webhook(hook.id)
    reg.test_webhook(hook.id)
    reg.disable_webhook(hook.id, reason="receiver moving")

    admin = browser(served.token)
    page = admin.client.get("/webhooks")
    assert page.status_code == 200
    for text in (receiver.url, "version.transition", "disabled", "receiver moving",
                 "failed 503", "ok 200", "ping_"):
        assert text in page.text
    assert secret not in page.text
    assert 'href="/webhooks"' in admin.client.get("/models").text

    viewer = browser(served.token_for("vi", Role.VIEWER))
    assert 'href="/webhooks"' not in viewer.client.get("/models").text
    assert viewer.client.get("/webhooks").status_code == 403
