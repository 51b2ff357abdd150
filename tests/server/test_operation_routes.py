"""The generated REST routes: every served operation has one, identity comes from the
token, errors have one body, refused changes are audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.domain.principal import Role
from modelyard.server.app import create_app
from modelyard.services.access import Access, init_admin
from modelyard.services.base import Context
from modelyard.services.registry import Registry, RegistryApi
from modelyard.wire.routes import route_of, served


@pytest.fixture
def served_app(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An app on a fresh SQLite registry, and tokens of an admin and a viewer."""
    app = create_app(f"sqlite:///{tmp_path / 'r.db'}", str(tmp_path / "objects"))
    with TestClient(app) as client:
        db = app.state.backend.db
        _, admin = init_admin(db, "ana")
        embedded = Registry(db, app.state.backend.store, user="ana")
        _, viewer = Access(Context(db, embedded.store, embedded.principal)).create_user(
            "vic", Role.VIEWER)
        yield client, {"admin": admin, "viewer": viewer}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_served_operation_has_exactly_its_route(
    served_app: tuple[TestClient, dict[str, str]]
) -> None:
    client, _ = served_app
    paths = client.get("/openapi.json").json()["paths"]
    for op in RegistryApi.operations().values():
        if not served(op.method):
            continue
        route = route_of(op.method)
        assert route.method.lower() in paths[route.path], route.path
    assert "/api/v1/register" not in paths  # the content plane runs on the caller's side
    assert "/api/v1/audit-checkpoint" not in paths  # it would name files on the server


def test_identity_comes_from_the_token_never_from_the_body(
    served_app: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = served_app
    made = client.post("/api/v1/create-model", json={"name": "m"},
                       headers=_auth(tokens["admin"]))
    assert made.status_code == 200 and made.json()["created_by"] == "ana"
    forged = client.post("/api/v1/create-model", json={"name": "n", "created_by": "bo"},
                         headers=_auth(tokens["admin"]))
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_input"
    assert client.get("/api/v1/whoami", headers=_auth(tokens["viewer"])).json() == {
        "user": "vic", "roles": ["viewer"]}


def test_401_and_403_have_the_canonical_body_and_refused_changes_are_audited(
    served_app: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = served_app
    anonymous = client.post("/api/v1/create-model", json={"name": "m"})
    assert anonymous.status_code == 401
    assert set(anonymous.json()["error"]) == {"code", "message", "hint", "details"}
    bad = client.get("/api/v1/list-models", headers=_auth("myd_000000000000_forged"))
    assert bad.status_code == 401 and bad.json()["error"]["details"] == {}
    refused = client.post("/api/v1/create-model", json={"name": "m"},
                          headers=_auth(tokens["viewer"]))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    events = client.get("/api/v1/audit", headers=_auth(tokens["admin"])).json()["items"]
    denied = [e["after"] for e in events if e["action"] == "access.denied"]
    assert [(d["user"], d["operation"]) for d in denied] == [
        (None, "create_model"), ("vic", "create_model")]
    assert client.get("/api/v1/verify-audit", headers=_auth(tokens["admin"])).json()["ok"]


def test_bad_input_is_a_4xx_with_a_hint_never_a_500(
    served_app: tuple[TestClient, dict[str, str]]
) -> None:
    client, tokens = served_app
    h = _auth(tokens["admin"])
    cases = [
        client.get("/api/v1/get-version", params={"name_or_uri": "ghost", "version": 1},
                   headers=h),
        client.get("/api/v1/list-models", params={"max_results": 0}, headers=h),
        client.get("/api/v1/list-models", params={"page_token": "garbage"}, headers=h),
        client.post("/api/v1/create-version", json={"name": "m", "content": {
            "digest": "blake3:" + "0" * 64, "kind": "file", "size": 1, "file_count": 1}},
            headers=h),
        client.post("/api/v1/transition", json={"name": "m"}, headers=h),
        client.post("/api/v1/create-model", content=b"{not json", headers=h),
        client.get("/api/v1/no-such-operation", headers=h),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["message"]


def test_an_operation_naming_server_files_is_refused_by_the_client_not_sent(
    served_app: tuple[TestClient, dict[str, str]]
) -> None:
    from modelyard.client.remote import RemoteRegistry
    from modelyard.errors import InvalidInput

    client, tokens = served_app
    client.headers["Authorization"] = f"Bearer {tokens['admin']}"
    remote = RemoteRegistry.over(client)
    with pytest.raises(InvalidInput, match="server's disk"):
        remote.audit_checkpoint()


def test_a_client_binds_each_operation_once(
    served_app: tuple[TestClient, dict[str, str]]
) -> None:
    from modelyard.client.remote import RemoteRegistry

    client, tokens = served_app
    client.headers["Authorization"] = f"Bearer {tokens['admin']}"
    remote, other = RemoteRegistry.over(client), RemoteRegistry.over(client)
    assert remote.create_model is remote.create_model
    assert remote.register is remote.register
    assert other.create_model is not remote.create_model
    remote.create_model("m")
    assert [m.name for m in other.list_models()] == ["m"]


def test_a_server_worker_freezes_what_it_holds_once_built(tmp_path: Path) -> None:
    """Built by ``modelyard server``'s factory, the app's objects are out of the cycle
    collector's sight (a full collection over them stalled requests)."""
    import os
    import subprocess
    import sys

    script = ("import gc\n"
              "from modelyard.server.app import app_from_environment\n"
              "before = gc.get_freeze_count()\n"
              "app_from_environment()\n"
              "print(before, gc.get_freeze_count())\n")
    env = {**os.environ, "MODELYARD_REGISTRY_URI": f"sqlite:///{tmp_path / 'r.db'}",
           "MODELYARD_STORE_URI": str(tmp_path / "objects")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    before, after = int(out[0]), int(out[1])
    assert before == 0 and after > 10_000



def test_query_strings_carry_any_text_booleans_and_times(
    served_app: tuple[TestClient, dict[str, str]]
) -> None:
    """A read sent as a GET encodes its arguments itself: text with query-string
    delimiters and non-ASCII, booleans and times with offsets arrive as sent."""
    from datetime import UTC, datetime, timedelta, timezone

    from modelyard.client.remote import RemoteRegistry
    from modelyard.domain.content import StoredContent

    client, tokens = served_app
    client.headers["Authorization"] = f"Bearer {tokens['admin']}"
    remote = RemoteRegistry.over(client)
    store = client.app.state.backend.store  # type: ignore[attr-defined]
    content = StoredContent(store.put_bytes(b"w"), "file", 1, 1, "w.bin")
    odd = "a&b=c +d%2B é/?#"
    remote.create_version("m", content, tags={"t": "plain"})
    remote.create_version("m", content, tags={"t": odd})
    found = remote.search_versions(f"name = 'm' and tags.t = '{odd}'")
    assert [v.version for v in found] == [2]
    assert [v.version for v in remote.list_versions("m", descending=True)] == [2, 1]
    assert [v.version for v in remote.list_versions("m", descending=False)] == [1, 2]
    since = datetime.now(UTC).astimezone(timezone(timedelta(hours=5))) - timedelta(hours=1)
    assert "version.register" in {e.action for e in remote.audit("m", since=since)}
    assert list(remote.audit("m", since=since + timedelta(hours=2))) == []
