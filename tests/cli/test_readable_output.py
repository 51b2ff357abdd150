"""Errors (JSON with --json, markup kept, --debug), did-you-mean, v2, readable numbers,
before → after history, help text for every argument, missing-backend hints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli import lazy
from modelyard.cli.main import app
from modelyard.errors import NotFound, StorageUnavailable
from modelyard.storage.content.objects import ObjectStore


@pytest.fixture
def runner(cli_home: Path) -> CliRunner:
    return CliRunner()


def test_json_errors_hint_at_top_level_and_markup_intact(runner: CliRunner,
                                                         model_dir: Path) -> None:
    runner.invoke(app, ["register", "fraud", str(model_dir)])
    result = runner.invoke(app, ["versions", "show", "frad", "1", "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stderr)["error"]
    assert body["code"] == "not_found" and body["details"] == {"name": "frad"}
    assert "did you mean 'fraud'?" in body["hint"]
    assert NotFound("x", hint="h").to_dict()["error"]["hint"] == "h"
    plain = runner.invoke(app, ["versions", "show", "fraud", "@champ"])
    assert plain.exit_code == 1 and "alias @champ" in plain.stderr
    bad = runner.invoke(app, ["describe", "a[x]", "text"])
    assert "'a[x]'" in bad.stderr  # Rich markup escaped: the name prints intact
    with pytest.raises(NotFound):  # --debug lets the real exception (and traceback) out
        runner.invoke(app, ["--debug", "versions", "show", "frad", "1"], catch_exceptions=False)


def test_unknown_command_suggests(runner: CliRunner) -> None:
    result = runner.invoke(app, ["modls", "list"])
    assert result.exit_code == 2 and "Did you mean 'models'?" in result.output
    sub = runner.invoke(app, ["models", "lst"])
    assert sub.exit_code == 2 and "Did you mean 'list'?" in sub.output


def test_v2_numbers_and_history_values(runner: CliRunner, model_dir: Path) -> None:
    runner.invoke(app, ["register", "m", str(model_dir), "--metric", "auc=0.9953364423717521"])
    runner.invoke(app, ["register", "m", str(model_dir)])
    moved = runner.invoke(app, ["transition", "m", "v2", "staging"])
    assert moved.exit_code == 0, moved.output
    assert runner.invoke(app, ["alias", "set", "m", "champion", "V1"]).exit_code == 0
    wrong = runner.invoke(app, ["transition", "m", "two", "staging"])
    assert wrong.exit_code == 2 and "write 3 or v3" in wrong.output
    history = runner.invoke(app, ["history", "m"]).stdout
    assert "none → staging" in history and "@champion: - → 1" in history
    listed = runner.invoke(app, ["versions", "list", "m"]).stdout
    assert "auc=0.995336" in listed
    full = json.loads(runner.invoke(app, ["versions", "show", "m", "1", "--json"]).stdout)
    assert full["metrics"]["auc"] == 0.9953364423717521


def test_every_argument_and_option_has_help() -> None:
    missing = []
    for name in lazy.COMMANDS:
        stack = [(name, lazy.load(name))]
        while stack:
            path, command = stack.pop()
            for sub_name, sub in getattr(command, "commands", {}).items():
                stack.append((f"{path} {sub_name}", sub))
            missing += [f"{path}: {p.name}" for p in command.params
                        if not getattr(p, "help", None)]
    assert missing == []


def test_help_is_plain_and_fast_path(runner: CliRunner) -> None:
    out = runner.invoke(app, ["versions", "show", "--help"]).output
    assert "<bool>" not in out and "NAME" in out


@pytest.mark.parametrize(("url", "extra", "driver"), [("gs://b/p", "gcs", "gcsfs"),
                                                     ("az://c/p", "azure", "adlfs")])
def test_missing_backend_hint_names_extra(url: str, extra: str, driver: str, runner: CliRunner,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.registry import _registry

    monkeypatch.setitem(sys.modules, driver, None)  # the dev extra installs it: hide it
    for protocol in ("gs", "gcs", "az", "abfs", "adl"):
        monkeypatch.delitem(_registry, protocol, raising=False)
    with pytest.raises(StorageUnavailable) as info:
        ObjectStore(url)
    assert f"pip install 'modelyard[{extra}]'" in (info.value.hint or "")
    result = runner.invoke(app, ["--store", url, "models", "list"])
    assert f"modelyard[{extra}]" in result.stderr
