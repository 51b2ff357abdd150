"""The CLI against a live server (a uvicorn subprocess): ``--registry http://…`` plus
``MODELYARD_TOKEN``, each user acting as their token says, with the embedded CLI's output
and errors, byte counts on every transfer, and a clear refusal of what needs the server's
own database or store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import modelyard
from modelyard.cli.main import app
from modelyard.client.remote import RemoteRegistry
from modelyard.services.access import init_admin
from modelyard.storage.sql.database import Database
from server.conftest import LiveServer, _free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module (SQLite and a folder store), its admin ``ana``; each test
    uses its own model names."""
    root = tmp_path_factory.mktemp("remote-cli")
    uri = f"sqlite:///{root / 'registry.db'}"
    db = Database(uri)
    try:
        _, token = init_admin(db, "ana")
    finally:
        db.dispose()
    live = LiveServer(uri, str(root / "objects"), root / "server.log", token=token)
    live.start()
    yield live
    live.stop()


Cli = Callable[..., Result]


def _invoke(env: Mapping[str, str | None], args: tuple[str, ...], code: int) -> Result:
    result = CliRunner().invoke(app, list(args), env=dict(env))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


@pytest.fixture
def cli(server: LiveServer, tmp_path: Path) -> Cli:
    """``cli(*args, token=ana's, code=0)``: the CLI against the server, as a token's user;
    MODELYARD_HOME is empty and no store is configured (nothing local is used)."""
    env: dict[str, str | None] = {
        "MODELYARD_REGISTRY_URI": server.url, "MODELYARD_HOME": str(tmp_path / "home"),
        "MODELYARD_STORE_URI": None, "MODELYARD_USER": None}

    def run(*args: str, token: str | None = server.token, code: int = 0) -> Result:
        return _invoke({**env, "MODELYARD_TOKEN": token}, args, code)

    return run


@pytest.fixture(scope="module")
def team(server: LiveServer) -> dict[str, str]:
    """Tokens of bo (contributor), cy (reviewer) and vi (viewer), made by ana's CLI."""
    env = {"MODELYARD_REGISTRY_URI": server.url, "MODELYARD_TOKEN": server.token}
    tokens = {}
    for name, role in (("bo", "contributor"), ("cy", "reviewer"), ("vi", "viewer")):
        made = json.loads(_invoke(env, ("users", "create", name, "--role", role, "--json"),
                                  0).stdout)
        assert (made["name"], made["role"], made["created_by"]) == (name, role, "ana")
        tokens[name] = made["token"]
    return tokens


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


@pytest.fixture
def transfers(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every progress bar the CLI opens: its description, total and the bytes reported."""
    bars: list[dict[str, Any]] = []
    lock = threading.Lock()  # uploads report from several threads

    @contextmanager
    def recording(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        bar: dict[str, Any] = {"description": description, "total": total, "bytes": 0}
        bars.append(bar)

        def advance(n: int) -> None:
            with lock:
                bar["bytes"] += n

        yield advance

    for module in ("output", "versions", "data"):
        monkeypatch.setattr(f"modelyard.cli.{module}.transfer_progress", recording)
    return bars


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_register_list_show_and_download_as_the_tokens_user(
    cli: Cli, team: dict[str, str], model_dir: Path, tmp_path: Path,
    transfers: list[dict[str, Any]],
) -> None:
    size = sum(len(b) for b in _files(model_dir).values())
    made = as_json(cli("register", "reg-fraud", str(model_dir), "--metric", "auc=0.91",
                       "--tag", "team=risk", "--json", token=team["bo"]))
    assert (made["name"], made["version"], made["created_by"]) == ("reg-fraud", 1, "bo")
    assert transfers[-1] == {"description": "storing model", "total": size, "bytes": size}
    single = as_json(cli("register", "reg-fraud", str(model_dir / "weights.bin"), "--json",
                         token=team["bo"]))
    assert single["version"] == 2 and single["artifact_kind"] == "file"

    listed = as_json(cli("versions", "list", "reg-fraud", "--json"))
    assert [(v["version"], v["created_by"]) for v in listed] == [(1, "bo"), (2, "bo")]
    shown = as_json(cli("versions", "show", "reg-fraud", "1", "--added", "--json",
                        token=team["vi"]))
    assert shown["digest"] == made["digest"] and shown["metrics"] == {"auc": 0.91}
    assert shown["added_bytes"] > 0
    assert "reg-fraud" in cli("versions", "show", "reg-fraud", "latest").stdout

    out = tmp_path / "out"
    done = cli("download", "models:/reg-fraud/1", "-o", str(out), token=team["vi"])
    assert f"downloaded models:/reg-fraud/1 to {out}" in done.stdout
    assert _files(out) == _files(model_dir)
    assert transfers[-1] == {"description": "downloading models:/reg-fraud/1", "total": size,
                             "bytes": size}
    cli("download", "models:/reg-fraud/2", "-o", str(tmp_path / "one"))
    assert (tmp_path / "one" / "weights.bin").read_bytes() == (
        model_dir / "weights.bin").read_bytes()


def test_transition_request_and_approve_with_two_users(
    cli: Cli, team: dict[str, str], model_dir: Path
) -> None:
    cli("register", "gov-fraud", str(model_dir), token=team["bo"])
    moved = as_json(cli("transition", "gov-fraud", "1", "staging", "--json", token=team["bo"]))
    assert moved["stage"] == "staging"
    made = as_json(cli("request", "gov-fraud", "v1", "--comment", "ship it", "--json",
                       token=team["bo"]))
    assert (made["status"], made["requested_by"]) == ("pending", "bo")
    own = cli("approve", str(made["id"]), "--json", token=team["bo"], code=1)
    assert json.loads(own.stderr)["error"]["code"] == "permission_denied"  # bo: no review
    done = as_json(cli("approve", str(made["id"]), "--json", token=team["cy"]))
    assert (done["status"], done["approvals"]) == ("applied", ["cy"])
    assert as_json(cli("versions", "show", "gov-fraud", "production", "--json"))["version"] == 1
    actions = {(e["actor"], e["action"]) for e in as_json(cli("audit", "gov-fraud", "--json"))}
    assert {("bo", "version.register"), ("bo", "request.create"),
            ("cy", "request.approve")} <= actions


def test_search_and_tags(cli: Cli, team: dict[str, str], model_dir: Path) -> None:
    cli("register", "tag-fraud", str(model_dir), token=team["bo"])
    cli("register", "tag-fraud", str(model_dir), token=team["bo"])
    assert "tagged tag-fraud version 2" in cli("tag", "tag-fraud", "2", "team=search",
                                               token=team["bo"]).stdout
    cli("tag", "tag-fraud", "owner=risk", token=team["bo"])
    found = as_json(cli("versions", "search", "tags.team = 'search'", "--json"))
    assert [(v["name"], v["version"]) for v in found] == [("tag-fraud", 2)]
    assert as_json(cli("models", "show", "tag-fraud", "--json"))["tags"] == {"owner": "risk"}


def test_runs_list_show_and_artifact_download(
    server: LiveServer, cli: Cli, team: dict[str, str], model_dir: Path, tmp_path: Path,
    transfers: list[dict[str, Any]],
) -> None:
    with RemoteRegistry(server.url, token=team["bo"]) as remote, modelyard.start_run(
            experiment="remote-cli", name="gbm", registry=remote) as run:
        run.log_param("lr", 0.1)
        run.log_metric("auc", 0.8, step=1)
        run.log_metric("auc", 0.9, step=2)
        run.log_artifact(model_dir, artifact_path="model")
    runs = as_json(cli("runs", "list", "--experiment", "remote-cli", "--json"))
    assert [(r["run_id"], r["created_by"], r["metrics"]) for r in runs] == [
        (run.run_id, "bo", {"auc": 0.9})]
    assert "min 0.8, max 0.9, 2 points" in cli("runs", "show", run.run_id).stdout

    out = tmp_path / "artifact"
    cli("download", f"runs:/{run.run_id}/model", "-o", str(out), token=team["vi"])
    assert _files(out) == _files(model_dir)
    size = sum(len(b) for b in _files(model_dir).values())
    assert transfers[-1]["bytes"] == size == transfers[-1]["total"]
    made = as_json(cli("register", "run-fraud", f"runs:/{run.run_id}/model", "--json",
                       token=team["bo"]))
    assert made["lineage"]["run_id"] == run.run_id and made["params"] == {"lr": 0.1}


def test_datasets_register_and_get(cli: Cli, team: dict[str, str], tmp_path: Path,
                                   transfers: list[dict[str, Any]]) -> None:
    data = tmp_path / "customers.csv"
    data.write_text("id,amount\n1,10\n2,20\n")
    made = as_json(cli("data", "register", "customers", str(data), "--json",
                       token=team["bo"]))
    assert made["uri"] == "datasets:/customers/1" and made["created_by"] == "bo"
    assert transfers[-1]["bytes"] == data.stat().st_size
    cli("data", "get", "datasets:/customers/1", "-o", str(tmp_path / "got"), token=team["vi"])
    assert (tmp_path / "got" / "customers.csv").read_bytes() == data.read_bytes()
    assert transfers[-1]["bytes"] == data.stat().st_size


def test_users_and_tokens(cli: Cli, team: dict[str, str]) -> None:
    made = as_json(cli("users", "create", "dee", "--role", "contributor", "--json"))
    ci = as_json(cli("tokens", "create", "--name", "ci", "--expires", "30d", "--json",
                     token=made["token"]))
    assert (ci["user"], ci["name"], ci["status"]) == ("dee", "ci", "active")
    mine = as_json(cli("tokens", "list", "--json", token=ci["token"]))
    assert {t["name"] for t in mine} == {"", "ci"} and {t["user"] for t in mine} == {"dee"}
    assert "dee" in cli("users", "list").stdout
    assert as_json(cli("users", "set-role", "dee", "viewer", "--json"))["role"] == "viewer"
    refused = cli("users", "create", "eve", "--role", "admin", token=team["bo"], code=1)
    assert "error:" in refused.stderr and "Traceback" not in refused.output
    assert as_json(cli("tokens", "revoke", ci["id"], "--json", token=made["token"]))[
        "status"] == "revoked"
    gone = cli("models", "list", "--json", token=ci["token"], code=1)
    assert json.loads(gone.stderr)["error"]["code"] == "unauthenticated"


def _shape(value: Any) -> Any:
    """The structure of JSON: keys and nesting kept, scalars replaced by their type, a list
    by the distinct shapes of its items (the two registries hold different numbers)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted({json.dumps(_shape(v), sort_keys=True) for v in value})
    return type(value).__name__


def test_json_has_the_embedded_shape(cli: Cli, team: dict[str, str], model_dir: Path,
                                     cli_home: Path) -> None:
    commands = [
        ("register", "shape-fraud", str(model_dir), "--metric", "auc=0.9", "--tag", "t=1"),
        ("versions", "list", "shape-fraud"), ("versions", "show", "shape-fraud", "1"),
        ("versions", "search", "name = 'shape-fraud'"), ("models", "show", "shape-fraud"),
        ("transition", "shape-fraud", "1", "staging"), ("request", "shape-fraud", "1"),
        ("versions", "list", "shape-fraud", "--max-results", "1"), ("history", "shape-fraud"),
        ("users", "create", "alice", "--role", "admin"),  # embedded: the CLI's own user
        ("tokens", "create", "--name", "shape"),
    ]
    embedded = {"MODELYARD_REGISTRY_URI": None, "MODELYARD_TOKEN": None}
    for command in commands:
        here = json.loads(_invoke(embedded, (*command, "--json"), 0).stdout)
        there = as_json(cli(*command, "--json"))
        assert _shape(there) == _shape(here), command


def test_a_missing_token_names_the_variable(cli: Cli) -> None:
    plain = cli("models", "list", token=None, code=1)
    assert "needs a token" in plain.stderr and "MODELYARD_TOKEN" in plain.stderr
    assert "Traceback" not in plain.output
    error = json.loads(cli("models", "list", "--json", token=None, code=1).stderr)["error"]
    assert error["code"] == "unauthenticated" and "MODELYARD_TOKEN" in error["hint"]


def test_the_token_option_works_and_is_never_printed(cli: Cli, server: LiveServer,
                                                     team: dict[str, str],
                                                     model_dir: Path) -> None:
    for _ in range(2):
        cli("register", "page-fraud", str(model_dir), token=team["bo"])
    paged = cli("--token", team["vi"], "versions", "list", "page-fraud", "--max-results", "1",
                token=None)
    assert "more: modelyard versions list page-fraud --max-results 1 --page-token" in (
        paged.stderr)
    assert team["vi"] not in paged.output


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    env = {**os.environ, "MODELYARD_HOME": str(tmp_path), "MODELYARD_TOKEN": "myd_x_y"}
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "modelyard", "--registry", url, "models", "list", *extra],
            env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        message = json.loads(done.stderr)["error"]["message"] if extra else done.stderr
        assert f"cannot reach the Modelyard server at {url}" in message


def test_a_viewer_cannot_register(cli: Cli, team: dict[str, str], model_dir: Path) -> None:
    refused = cli("register", "view-fraud", str(model_dir), token=team["vi"], code=1)
    assert "error:" in refused.stderr and "vi" in refused.stderr
    assert "Traceback" not in refused.output
    body = json.loads(cli("register", "view-fraud", str(model_dir), "--json",
                          token=team["vi"], code=1).stderr)
    assert body["error"]["code"] == "permission_denied"
    cli("versions", "list", "view-fraud", code=1)  # nothing was registered


@pytest.mark.parametrize("command", [
    ("audit", "checkpoint"), ("cleanup",), ("storage", "stats"),
    ("verify", "--repair", "--from", "."), ("audit", "verify", "--checkpoint", "cp.json"),
])
def test_what_needs_the_servers_disk_is_refused_with_a_hint(cli: Cli,
                                                            command: tuple[str, ...]) -> None:
    _refused_with_a_hint(cli(*command, code=1))
    error = json.loads(cli(*command, "--json", code=1).stderr)["error"]
    assert error["code"] == "invalid_input" and "server" in error["message"]
    assert "postgresql://" in error["hint"] or "store" in error["hint"]


def test_db_upgrade_is_refused_with_a_hint(cli: Cli) -> None:
    hint = _refused_with_a_hint(cli("db", "upgrade", code=1))
    assert "modelyard --registry postgresql://… db upgrade" in hint


def _refused_with_a_hint(refused: Result) -> str:
    """The hint of a one-line refusal (no traceback)."""
    error, hint = refused.stderr.strip().splitlines()
    assert error.startswith("error: 'modelyard ") and "server" in error
    assert "Traceback" not in refused.output
    assert hint.startswith("hint: ")
    return hint


def test_served_checks_run_on_the_server(cli: Cli, tmp_path: Path) -> None:
    assert "all objects intact" in cli("verify").stdout
    assert as_json(cli("audit", "verify", "--json"))["ok"] is True
    assert as_json(cli("storage", "stats", str(tmp_path / "elsewhere"), "--json"))[
        "objects"] == 0
