"""Webhook fixtures: a loopback receiver, and the settings that allow it explicitly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelyard.services.webhook_delivery import SecretBox
from webhook_receiver import Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


@pytest.fixture
def hook_env(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """A sealing key, and an allow-list naming the receiver's loopback URL (loopback is
    refused unless allowed by its address)."""
    monkeypatch.setenv("MODELYARD_WEBHOOK_KEY", SecretBox.new_key())
    monkeypatch.setenv("MODELYARD_WEBHOOK_ALLOW", f"http://127.0.0.1:{receiver.port}/hooks/")
    monkeypatch.setenv("MODELYARD_PUBLIC_URL", "https://registry.example.com")
    return receiver
