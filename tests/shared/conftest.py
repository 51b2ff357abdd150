"""One behaviour suite, two faces: every test here runs against the embedded registry and
against a server through the remote client (FastAPI's TestClient as the HTTP transport, so
the real routes, auth, codec and error bodies are exercised in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.client.remote import RemoteRegistry
from modelyard.server.app import create_app
from modelyard.services.access import init_admin
from modelyard.services.registry import Registry, RegistryApi
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database


@pytest.fixture(params=["embedded", "remote"])
def api(request: pytest.FixtureRequest, registry_url: str, tmp_path: Path
        ) -> Iterator[RegistryApi]:
    store = str(tmp_path / "objects")
    if request.param == "embedded":
        with Registry(Database(registry_url), ObjectStore(store), user="ana") as embedded:
            yield embedded
        return
    app = create_app(registry_url, store)
    with TestClient(app) as client:
        _, token = init_admin(app.state.backend.db, "ana")
        client.headers["Authorization"] = f"Bearer {token}"
        yield RemoteRegistry.over(client)
