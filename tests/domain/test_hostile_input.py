"""Hostile input (issue 9, findings 8-10): names with a trailing newline, numbers too big for
the version column, and ``like`` patterns built to be slow.

Each is exercised as a user meets it: through the Python API and the CLI, on SQLite and on
PostgreSQL, plus property tests of the validators and of the ``like`` matcher.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from modelyard.cli.main import app
from modelyard.domain import names
from modelyard.domain.datasets import parse_dataset_uri
from modelyard.domain.expression_eval import _like, evaluate
from modelyard.domain.expressions import MAX_LIKE_PATTERN, parse
from modelyard.domain.names import (
    MAX_VERSION,
    check_alias,
    check_key,
    check_model_name,
    check_version_number,
)
from modelyard.domain.refs import parse_model_uri, parse_ref
from modelyard.domain.runs import check_run_id
from modelyard.errors import InvalidInput, ModelyardError
from modelyard.services.registry import Registry

# --- the CLI on both backends ------------------------------------------------------------

Cli = Callable[..., Result]


@pytest.fixture
def cli(registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on a fresh SQLite or PostgreSQL registry; arguments reach it unchanged (no
    shell stripping trailing newlines)."""
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELYARD_REGISTRY_URI", registry_url)
    monkeypatch.setenv("MODELYARD_STORE_URI", str(tmp_path / "objects"))
    monkeypatch.setenv("MODELYARD_USER", "alice")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        if code == 1:  # a clear one-line error, never a traceback
            assert isinstance(result.exception, SystemExit), result.exception
            assert "Traceback" not in result.output and "error:" in result.output
        return result

    return invoke


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"weights")
    return path


# --- finding 8: names end at the end of the string, not before a trailing newline ------------

HOSTILE_SUFFIXES = ["\n", "\r", "\r\n", "\x00", "\t", "\u2028", "\x85"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_VALIDATORS: dict[str, tuple[Callable[[str], object], str]] = {
    # what, (validator, the documented pattern it must fully match)
    "model": (check_model_name, r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"),
    "alias": (check_alias, r"[A-Za-z][A-Za-z0-9._-]{0,63}"),
    "key": (check_key, r"[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,249}"),
    "run id": (check_run_id, r"[0-9a-f]{32}"),
}


def _accepts(check: Callable[[str], object], text: str) -> bool:
    try:
        check(text)
    except InvalidInput:
        return False
    return True


@pytest.mark.parametrize("what", sorted(_VALIDATORS))
@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from("aZ09._-/ v\n\r\t\x00\x85\u2028é٣"), max_size=12)
       | st.from_regex(r"[a-z][a-z0-9]{0,6}\n?", fullmatch=True))
def test_accepted_names_are_exactly_the_documented_pattern(what: str, text: str) -> None:
    check, pattern = _VALIDATORS[what]
    accepted = _accepts(check, text)
    if accepted:
        assert re.fullmatch(pattern, text, re.ASCII) and not _CONTROL.search(text)
    elif what != "alias":  # aliases also refuse reserved words
        assert not re.fullmatch(pattern, text, re.ASCII)


@pytest.mark.parametrize("suffix", HOSTILE_SUFFIXES)
def test_a_trailing_control_character_is_refused_by_every_validator(suffix: str) -> None:
    for check, _ in _VALIDATORS.values():
        base = "0123456789abcdef" * 2 if check is check_run_id else "fraud"
        with pytest.raises(InvalidInput):
            check(base + suffix)
    for text in ("fraud\n", "\nfraud", "fr\naud"):
        with pytest.raises(InvalidInput):
            check_model_name(text)
    with pytest.raises(InvalidInput):
        parse_dataset_uri("datasets:/fraud\n/1")
    with pytest.raises(InvalidInput):
        parse_model_uri("models:/fraud\n/1")


def test_fraud_newline_is_refused_everywhere_in_the_api(reg: Registry, artifact: Path) -> None:
    reg.register("fraud", artifact)
    attempts: list[Callable[[], object]] = [
        lambda: reg.register("fraud\n", artifact),
        lambda: reg.create_model("fraud\n"),
        lambda: reg.register("fraud", artifact, aliases=["champion\n"]),
        lambda: reg.set_alias("fraud", "champion\n", 1),
        lambda: reg.set_tag("fraud", "team\n", "x"),
        lambda: reg.set_tag("fraud", "team\n", "x", version=1),
        lambda: reg.register("fraud", artifact, params={"lr\n": 1}),
        lambda: reg.register("fraud", artifact, metrics={"auc\n": 1.0}),
        lambda: reg.register_dataset("fraud\n", artifact),
        lambda: reg.create_experiment("fraud\n"),
        lambda: reg.create_run("fraud\n"),
        lambda: reg.get_version("fraud\n", 1),
        lambda: reg.list_versions("fraud\n"),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput):
            attempt()
    run = reg.create_run("exp")
    for attempt in (lambda: reg.log_params(run.run_id, {"lr\n": 1}),
                    lambda: reg.log_metrics(run.run_id, {"auc\n": 1.0}),
                    lambda: reg.get_run(run.run_id + "\n")):
        with pytest.raises(InvalidInput):
            attempt()
    assert [m.name for m in reg.list_models()] == ["fraud"]
    assert reg.get_version("fraud", 1).aliases == [] and reg.get_version("fraud", 1).tags == {}
    assert reg.get_model("fraud").tags == {}
    assert reg.list_datasets() == [] and [e.name for e in reg.list_experiments()] == ["exp"]


def test_a_remote_name_with_a_newline_is_refused(tmp_path: Path) -> None:
    import subprocess

    from modelyard.services.data.remotes import add_remote
    from modelyard.services.data.workspace import Workspace

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with Workspace.init(tmp_path) as ws:
        with pytest.raises(InvalidInput):
            add_remote(ws, "origin\n", str(tmp_path / "remote"))
        assert add_remote(ws, "origin", str(tmp_path / "remote")).name == "origin"


def test_fraud_newline_is_refused_by_the_cli(cli: Cli, artifact: Path) -> None:
    cli("register", "fraud", str(artifact))
    cli("register", "fraud\n", str(artifact), code=1)
    cli("models", "create", "fraud\n", code=1)
    cli("alias", "set", "fraud", "champion\n", "1", code=1)
    cli("tag", "fraud", "team\n=risk", code=1)
    cli("register", "fraud", str(artifact), "--param", "lr\n=1", code=1)
    cli("data", "register", "fraud\n", str(artifact), code=1)
    cli("versions", "show", "fraud\n", "1", code=1)
    listed = cli("models", "list", "--json").stdout
    assert '"fraud\\n"' not in listed and listed.count('"name"') == 1


# --- finding 9: version numbers outside 1..MAX_VERSION ---------------------------------------

TOO_BIG = [MAX_VERSION + 1, 99999999999, 2**63, 2**64, 10**30]


@pytest.mark.parametrize("bad", [0, -1, *TOO_BIG, -(2**63) - 1, True, 1.0, "", "0", "-3",
                                 "+3", "²", "٣", "3\n", " 3", "1" * 5000, str(2**63)])
def test_version_numbers_outside_the_range_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidInput, match="version"):
        check_version_number(bad)


def test_the_whole_range_is_accepted() -> None:
    assert check_version_number(1) == 1 and check_version_number(str(MAX_VERSION)) == MAX_VERSION
    assert parse_ref("m", f"v{MAX_VERSION}").value == MAX_VERSION
    for bad in ("99999999999", "v99999999999", "٣"):
        with pytest.raises(InvalidInput):
            parse_ref("m", bad)
    with pytest.raises(InvalidInput):
        parse_dataset_uri("datasets:/m/99999999999")


def test_huge_versions_through_the_api(reg: Registry, artifact: Path) -> None:
    reg.register("m", artifact)
    for bad in TOO_BIG:
        for attempt in (
            lambda bad=bad: reg.get_version("m", bad),
            lambda bad=bad: reg.get_version(f"models:/m/{bad}"),
            lambda bad=bad: reg.transition("m", bad, "staging"),
            lambda bad=bad: reg.set_alias("m", "a", bad),
            lambda bad=bad: reg.delete_version("m", bad),
            lambda bad=bad: reg.rollback("m", to=bad),
            lambda bad=bad: reg.request_promotion("m", bad),
            lambda bad=bad: reg.get_dataset("m", bad),
        ):
            with pytest.raises(InvalidInput, match=str(MAX_VERSION)):
                attempt()
    assert reg.get_version("m", 1).stage == "none" and reg.get_version("m", 1).aliases == []


def test_other_integers_stay_inside_their_columns(reg: Registry, artifact: Path) -> None:
    """Policy versions and metric steps are INTEGER columns, request ids BIGINT."""
    reg.register("m", artifact)
    reg.register_dataset("d", artifact)
    run = reg.create_run("e")
    for attempt in (
        lambda: reg.get_policy("m", 99999999999),
        lambda: reg.get_policy("m", -1),
        lambda: reg.get_request(2**63),
        lambda: reg.approve(2**63),
        lambda: reg.reject(2**63, comment="no"),
        lambda: reg.cancel(2**63),
        lambda: reg.log_metrics(run.run_id, {"auc": 0.5}, step=2**40),
        lambda: reg.log_metrics(run.run_id, {"auc": 0.5}, step=-1),
        lambda: reg.get_dataset("d", 0),
        lambda: reg.get_dataset("d", -1),
    ):
        with pytest.raises(InvalidInput, match="expected a whole number"):
            attempt()
    assert reg.get_policy("m", 0).policy_version == 0
    reg.log_metrics(run.run_id, {"auc": 0.5}, step=MAX_VERSION)
    assert [p.step for p in reg.metric_history(run.run_id, "auc")] == [MAX_VERSION]


@pytest.mark.parametrize("literal", ["9223372036854775808", "-9223372036854775809",
                                     "99999999999", "2147483648", "0", "-1", "10" * 40])
def test_out_of_range_version_filters_match_nothing(reg: Registry, artifact: Path,
                                                    literal: str) -> None:
    reg.register("m", artifact)
    assert reg.list_versions("m", filter=f"version = {literal}") == []
    assert reg.search_versions(f"version = {literal} and name = 'm'") == []
    assert reg.search_versions(f"{literal} = version") == []
    assert [v.version for v in reg.search_versions(f"version != {literal}")] == [1]
    assert [v.version for v in reg.search_versions("version = 1")] == [1]


def test_hostile_filter_literals_never_reach_the_database(reg: Registry, artifact: Path) -> None:
    """NUL bytes and non-names in pushed-down equalities: PostgreSQL refuses NUL in text."""
    reg.register("m", artifact, tags={"team": "risk"})
    for text in ("name = 'm\x00'", "name = 'm\n'", "stage = 'none\x00'", "tags.team = 'r\x00'",
                 "name = 'm\x00' and version = 1"):
        assert reg.search_versions(text) == [], text
    assert reg.list_runs(filter="experiment = 'e\x00' and status = 'running\x00'") == []


def test_huge_versions_through_the_cli(cli: Cli, artifact: Path) -> None:
    cli("register", "m", str(artifact))
    for bad in ("99999999999", "9223372036854775808", "0"):
        assert str(MAX_VERSION) in cli("versions", "show", "m", bad, code=1).output
        cli("versions", "show", "m", f"v{bad}", code=1)
        cli("transition", "m", bad, "staging", code=1)
        cli("alias", "set", "m", "a", bad, code=1)
        cli("versions", "delete", "m", bad, code=1)
        cli("rollback", "m", "--to", bad, code=1)
        cli("download", f"models:/m/{bad}", "-o", "out", code=1)
    for literal in ("9223372036854775808", "99999999999", "-9223372036854775809"):
        assert cli("versions", "list", "m", "--filter", f"version = {literal}",
                   "--json").stdout.strip() == "[]"
        assert cli("versions", "search", f"version = {literal}", "--json").stdout.strip() == "[]"
    cli("transition", "m", "-1", "staging", code=2)  # a usage error, like any bad option
    shown = cli("versions", "show", "m", "1", "--json").stdout
    assert '"stage": "none"' in shown and '"aliases": []' in shown


# --- finding 10: `like` in linear time, with a bounded pattern -------------------------------


def _reference_like(text: str, pattern: str) -> bool:
    """SQL LIKE by translation to a regular expression (fine on short inputs)."""
    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(body, text, re.DOTALL) is not None


@settings(max_examples=1500, deadline=None)
@given(text=st.text("ab\n", max_size=12), pattern=st.text("ab%_\n", max_size=9))
def test_like_agrees_with_a_reference(text: str, pattern: str) -> None:
    assert _like(text, pattern) is _reference_like(text, pattern)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_like_finds_its_own_witness(data: st.DataObject) -> None:
    """A pattern made from a text by blanking and cutting parts of it always matches it."""
    text = data.draw(st.text("abc", min_size=1, max_size=40))
    pattern, i = "", 0
    while i < len(text):
        step = data.draw(st.integers(1, 4))
        action = data.draw(st.sampled_from(["keep", "blank", "cut"]))
        piece = text[i:i + step]
        pattern += {"keep": piece, "blank": "_" * len(piece), "cut": "%"}[action]
        i += step
    assert _like(text, pattern) and _reference_like(text, pattern)


def _hard_case() -> tuple[str, str, str]:
    """The trial's shape: a 30,000-character description, a pattern near the length bound
    that almost matches at every position (the quadratic case of a backtracking matcher)."""
    description = "a" * 30_000
    pattern = "%" + "a_" * 300 + "b%" + "a" * 350 + "%"  # 953 characters
    found = "%" + "a_" * 300 + "a%" + "a" * 350 + "%"
    return description, pattern, found


def test_a_long_pattern_over_a_long_description(reg: Registry, artifact: Path) -> None:
    description, missing, found = _hard_case()
    assert len(missing) <= MAX_LIKE_PATTERN and len(description) == 30_000
    reg.register("m", artifact, description=description)
    assert reg.search_versions(f"description like '{missing}'") == []
    assert [v.version for v in reg.search_versions(f"description like '{found}'")] == [1]
    assert not _like(description + "b", "%" + "a_" * 300 + "b_%")
    assert _like("x" * 29_000 + "a_b" * 300, "%" + "a_b" * 300)


def test_an_over_long_pattern_is_refused_with_its_column(reg: Registry, cli: Cli) -> None:
    pattern = "%" * (MAX_LIKE_PATTERN + 1)
    with pytest.raises(InvalidInput, match=r"column 19:.*at most 1000 characters") as info:
        parse(f"description like  '{pattern}'")
    assert info.value.details["position"] == 19 and info.value.hint
    parse(f"description like '{pattern[1:]}'")  # the bound itself is fine
    with pytest.raises(InvalidInput, match="at most 1000"):
        reg.search_versions(f"name = 'm' or description like '{pattern}'")
    with pytest.raises(InvalidInput, match="at most 1000"):
        reg.list_runs(filter=f"name like '{pattern}'")
    assert "at most 1000" in cli("versions", "search", f"description like '{pattern}'",
                                 code=1).output


def test_like_is_case_sensitive_on_every_backend(reg: Registry, artifact: Path) -> None:
    """SQLite's LIKE ignores ASCII case and PostgreSQL's does not; the language means the
    same on both because ``like`` is never pushed into SQL."""
    reg.register("Fraud_1", artifact, description="Card FRAUD 100%")
    for field, pattern, hit in [
        ("name", "fraud%", False), ("name", "Fraud%", True), ("name", "Fraud_1", True),
        ("name", "FraudX1", False), ("description", "%fraud%", False),
        ("description", "%FRAUD 100_", True), ("description", "card%", False),
        ("description", "Card%100%", True),
    ]:
        got = [v.name for v in reg.search_versions(f"{field} like '{pattern}'")]
        assert got == (["Fraud_1"] if hit else []), (field, pattern)
    assert evaluate(parse("name like 'x'"), {"name": "X"}).passed is False


def test_names_module_documents_its_bounds() -> None:
    assert MAX_VERSION == 2**31 - 1  # the INTEGER version columns on PostgreSQL
    assert MAX_LIKE_PATTERN == 1000
    assert names.check_model_name("a" * 128) and not _accepts(check_model_name, "a" * 129)
    assert isinstance(InvalidInput("x"), ModelyardError)
