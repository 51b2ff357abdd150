"""--max-results and --page-token on every list command: pages walked through the CLI (JSON
tokens and the printed 'more:' command), the paged JSON shape, and refused tokens and sizes."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import modelyard
from modelyard.cli.main import app

Key = Callable[[dict[str, Any]], Any]

# Every command that lists something the service pages, and what identifies one item.
LISTS: list[tuple[list[str], Key]] = [
    (["models", "list"], lambda d: d["name"]),
    (["versions", "list", "echo"], lambda d: d["version"]),
    (["versions", "search", "version >= 1"], lambda d: (d["name"], d["version"])),
    (["requests", "list", "echo"], lambda d: d["id"]),
    (["audit", "echo"], lambda d: d["seq"]),
    (["experiments", "list"], lambda d: d["name"]),
    (["runs", "list", "--experiment", "exp0"], lambda d: d["run_id"]),
    (["data", "list"], lambda d: (d["name"], d["version"])),
]
IDS = [" ".join(args[:2]) for args, _ in LISTS]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five or more of everything: models, versions, requests, experiments, runs, datasets."""
    root = tmp_path_factory.mktemp("paging")
    reg = modelyard.connect(home=root / "home", user="alice")
    artifact = root / "weights.bin"
    for i, name in enumerate(("alpha", "bravo", "charlie", "delta", "echo")):
        artifact.write_bytes(bytes([i]))
        reg.register(name, artifact)
    for version in range(1, 6):
        if version > 1:
            reg.register("echo", artifact)
        reg.transition("echo", version, "staging")
        reg.request_promotion("echo", version)
    for i in range(5):
        reg.create_experiment(f"exp{i}")
        reg.create_run("exp0", name=f"run{i}")
        artifact.write_bytes(bytes([i]))
        reg.register_dataset("customers", artifact)
    reg.close()
    return root / "home"


@pytest.fixture
def run(home: Path) -> Callable[..., Result]:
    runner = CliRunner()
    env = {"MODELYARD_HOME": str(home), "MODELYARD_USER": "alice",
           "MODELYARD_REGISTRY_URI": None, "MODELYARD_STORE_URI": None}

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result

    return invoke


def _json_pages(run: Callable[..., Result], args: list[str]) -> list[dict[str, Any]]:
    pages = [json.loads(run(*args, "--max-results", "2", "--json").stdout)]
    while pages[-1]["next_page_token"] is not None:
        pages.append(json.loads(run(*args, "--max-results", "2", "--json", "--page-token",
                                    pages[-1]["next_page_token"]).stdout))
    return pages


def _more(result: Result) -> list[str] | None:
    """The command a table page prints on stderr for the next page, as words."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("more: ")]
    assert len(lines) <= 1, result.stderr
    return shlex.split(lines[0].removeprefix("more: ")) if lines else None


@pytest.mark.parametrize(("args", "key"), LISTS, ids=IDS)
def test_json_pages_hold_every_item_once(run: Callable[..., Result], args: list[str],
                                         key: Key) -> None:
    everything = json.loads(run(*args, "--json").stdout)  # no paging flags: the plain list
    assert isinstance(everything, list) and len(everything) >= 5
    pages = _json_pages(run, args)
    assert all(set(page) == {"items", "next_page_token"} for page in pages)
    assert [len(page["items"]) for page in pages[:-1]] == [2] * (len(pages) - 1)
    assert pages[-1]["next_page_token"] is None and pages[-1]["items"]
    walked = [key(item) for page in pages for item in page["items"]]
    assert walked == [key(item) for item in everything]
    assert len(set(walked)) == len(walked)


@pytest.mark.parametrize(("args", "key"), LISTS, ids=IDS)
def test_the_printed_more_command_walks_the_same_pages(
        run: Callable[..., Result], args: list[str], key: Key) -> None:
    assert _more(run(*args)) is None  # without --max-results: everything, no hint
    tokens = [page["next_page_token"] for page in _json_pages(run, args)[:-1]]
    result, followed = run(*args, "--max-results", "2"), []
    while (words := _more(result)) is not None:
        assert words[0] == "modelyard" and words[-2] == "--page-token"
        followed.append(words[-1])
        result = run(*words[1:])
    assert followed == tokens


def test_more_repeats_global_options_and_quotes_arguments(run: Callable[..., Result],
                                                          home: Path) -> None:
    result = run("--home", str(home), "versions", "search", "version >= 1", "--max-results",
                 "2")
    token = json.loads(run("versions", "search", "version >= 1", "--max-results", "2",
                           "--json").stdout)["next_page_token"]
    assert f"more: modelyard --home {shlex.quote(str(home))} versions search " \
           f"'version >= 1' --max-results 2 --page-token {token}" in result.stderr
    assert "more:" not in result.stdout


@pytest.mark.parametrize(("args", "key"), LISTS, ids=IDS)
def test_bad_tokens_and_sizes_are_user_errors(run: Callable[..., Result], args: list[str],
                                              key: Key) -> None:
    other = ["experiments", "list"] if args[0] == "models" else ["models", "list"]
    foreign = json.loads(run(*other, "--max-results", "1", "--json").stdout)["next_page_token"]
    for token in ("not-a-token", foreign):
        plain = run(*args, "--page-token", token, code=1)
        assert "invalid page token" in plain.stderr and "Traceback" not in plain.output
        error = json.loads(run(*args, "--page-token", token, "--json", code=1).stderr)["error"]
        assert error["code"] == "invalid_input" and "invalid page token" in error["message"]
    for size in ("0", "10001"):
        assert "from 1 to 10,000" in run(*args, "--max-results", size, code=1).stderr
        error = json.loads(run(*args, "--max-results", size, "--json", code=1).stderr)["error"]
        assert error["code"] == "invalid_input"
    run(*args, "--max-results", "two", code=2)


def test_paging_options_are_only_for_the_audit_listing(run: Callable[..., Result]) -> None:
    assert "only for listing" in run("audit", "verify", "--max-results", "2", code=2).stderr
