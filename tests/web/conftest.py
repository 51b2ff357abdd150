"""Web UI fixtures: the seeded registry behind an app in-process, and signed-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_support import Browser, Seeded, seed

import server.conftest as server_fixtures
from server.conftest import Served

# The server tests' fixtures: an app in-process (``served``) and live servers.
serve = server_fixtures.serve
served = server_fixtures.served
start_server = server_fixtures.start_server


@pytest.fixture
def site(served: Served, tmp_path: Path) -> Seeded:
    return seed(served.backend.db, served.backend.store, served.token, tmp_path)


@pytest.fixture
def browser(served: Served) -> Iterator[Callable[[str | None], Browser]]:
    """``browser(token)``: a fresh client on the same app, signed in with ``token``."""
    opened: list[TestClient] = []

    def open_as(token: str | None) -> Browser:
        client = TestClient(served.app)
        opened.append(client)
        found = Browser(client)
        if token is not None:
            found.sign_in(token)
        return found

    yield open_as
    for client in opened:
        client.close()
