"""``modelyard users …`` and ``tokens …`` against a fresh SQLite or PostgreSQL registry: a
token is printed once and authenticates; every command speaks --json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from modelyard.cli.main import app
from modelyard.services.access import TokenRefused, authenticate
from modelyard.storage.sql.database import Database

Run = Callable[..., Result]


@pytest.fixture
def run(registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run(*args, code=0)``: the CLI as the embedded user 'root' on a fresh registry."""
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELYARD_REGISTRY_URI", registry_url)
    monkeypatch.setenv("MODELYARD_USER", "root")
    monkeypatch.delenv("MODELYARD_STORE_URI", raising=False)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    return invoke


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def _principal(registry_url: str, token: str) -> tuple[str, set[str]]:
    db = Database(registry_url)
    try:
        principal = authenticate(db, token)
    finally:
        db.dispose()
    return principal.user, {str(r) for r in principal.roles}


def test_users_create_prints_the_token_once_and_it_authenticates(
    run: Run, registry_url: str
) -> None:
    made = run("users", "create", "root", "--role", "admin")
    assert "created user root (admin)" in made.stdout
    token = next(line.split()[1] for line in made.stdout.splitlines()
                 if line.startswith("token: "))
    assert "not shown again" in made.stderr and token not in made.stderr
    assert _principal(registry_url, token) == ("root", {"admin"})
    listed = run("tokens", "list").stdout
    assert token not in listed and token.split("_")[1] in listed  # the id, never the secret
    shown = as_json(run("users", "create", "cy", "--role", "contributor", "--json"))
    assert (shown["name"], shown["role"], shown["created_by"], shown["disabled"]) == (
        "cy", "contributor", "root", False)
    assert _principal(registry_url, shown["token"]) == ("cy", {"contributor"})


def test_users_list_set_role_and_disable(run: Run, registry_url: str) -> None:
    assert "no users yet" in run("users", "list").stdout
    run("users", "create", "root", "--role", "admin")
    cy = as_json(run("users", "create", "cy", "--role", "viewer", "--json"))["token"]
    table = run("users", "list").stdout
    assert "cy" in table and "viewer" in table and "active" in table
    assert "cy is now reviewer" in run("users", "set-role", "cy", "reviewer").stdout
    assert as_json(run("users", "set-role", "cy", "contributor", "--json"))["role"] == (
        "contributor")
    assert _principal(registry_url, cy) == ("cy", {"contributor"})
    assert as_json(run("users", "disable", "cy", "--json"))["disabled"] is True
    assert "disabled" in run("users", "list").stdout
    page = as_json(run("users", "list", "--max-results", "1", "--json"))
    assert [u["name"] for u in page["items"]] == ["cy"] and page["next_page_token"]
    rest = as_json(run("users", "list", "--page-token", page["next_page_token"], "--json"))
    assert [u["name"] for u in rest["items"]] == ["root"]
    refused = run("users", "disable", "root", code=1)
    assert "last enabled admin" in refused.stderr
    bad = run("users", "create", "x", "--role", "boss", "--json", code=1)
    assert json.loads(bad.stderr)["error"]["code"] == "invalid_input"
    assert "reserved" in run("users", "create", "modelyard", "--role", "viewer", code=1).stderr


def test_tokens_create_list_and_revoke(run: Run, registry_url: str) -> None:
    missing = run("tokens", "create", code=1)  # the embedded user is not a user yet
    assert "user 'root' not found" in missing.stderr and "users create" in missing.stderr
    run("users", "create", "root", "--role", "admin")
    run("users", "create", "cy", "--role", "contributor")
    made = as_json(run("tokens", "create", "--name", "ci", "--expires", "30d", "--json"))
    assert (made["user"], made["name"], made["status"]) == ("root", "ci", "active")
    assert made["expires_at"] and made["token"].startswith(f"myd_{made['id']}_")
    dated = run("tokens", "create", "--user", "cy", "--expires", "2099-01-31")
    assert "for cy (expires 2099-01-31 00:00 UTC)" in dated.stdout
    assert "not shown again" in dated.stderr
    theirs = as_json(run("tokens", "list", "--user", "cy", "--json"))
    assert [t["user"] for t in theirs] == ["cy", "cy"]
    assert all("secret" not in key and "hash" not in key for t in theirs for key in t)
    assert f"revoked token {made['id']} of root" in run("tokens", "revoke", made["id"]).stdout
    with pytest.raises(TokenRefused, match="invalid, expired or revoked"):
        _principal(registry_url, made["token"])
    statuses = {t["id"]: t["status"] for t in as_json(run("tokens", "list", "--json"))}
    assert statuses[made["id"]] == "revoked"
    table = run("tokens", "list").stdout
    assert "revoked" in table and "ci" in table
    again = run("tokens", "revoke", made["id"], "--json", code=1)
    assert json.loads(again.stderr)["error"]["code"] == "invalid_transition"
    assert "invalid expiry" in run("tokens", "create", "--expires", "soon", code=1).stderr
    assert "not in the future" in run("tokens", "create", "--expires", "2001-01-01",
                                      code=1).stderr
    revoked = as_json(run("tokens", "revoke", theirs[0]["id"], "--json"))
    assert (revoked["id"], revoked["status"]) == (theirs[0]["id"], "revoked")
    assert "audit chain intact" in run("audit", "verify").stdout
