"""``modelyard data …`` end to end through the CLI, with ``--json`` output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitdata import commit, git, write_tree


def test_cli_workflow_with_json(cli: Any, repo: Path, tmp_path: Path) -> None:
    write_tree(repo, {"data/set/a.txt": "a", "data/set/b.txt": "b"})
    added = cli("add", "data/set", "--json")
    assert added[0]["path"] == "data/set" and added[0]["file_count"] == 2
    cli("remote", "add", "origin", str(tmp_path / "remote"), "--default",
        "--option", "anon=false")
    commit(repo, "v1")  # the remote is in .modelyard/config, committed like code
    remotes = cli("remote", "list", "--json")
    assert remotes == [{"name": "origin", "url": str(tmp_path / "remote"),
                        "options": {"anon": "false"}, "default": True,
                        "sources": {"url": ".modelyard/config", "anon": ".modelyard/config"}}]
    assert cli("status", "--json")["not_pushed"] == ["data/set"]
    assert cli("push", "-j", "2", "--json")["transferred"] == 3
    assert cli("status", "--json")["clean"] is True
    write_tree(repo, {"data/set/b.txt": "B"})
    assert cli("status", "--json")["modified"] == ["data/set"]
    cli("add", "data/set")
    commit(repo, "v2")
    assert cli("diff", "HEAD~1", "--json")["modified"] == ["data/set/b.txt"]
    git(repo, "checkout", "-q", "HEAD~1")
    assert cli("checkout", "--json")["restored"] == ["data/set"]
    assert (repo / "data/set/b.txt").read_text() == "b"
    assert cli("gc", "--all-commits", "--dry-run", "--json")["removed"] == []
    assert cli("gc", "--dry-run", "--json")["removed_count"] == 0
    assert cli("gc", "--workspace", "--grace", "0", "--dry-run", "--json")["removed_count"] == 2
    pulled = cli("pull", "--json")
    assert pulled["checkout"]["unchanged"] == ["data/set"]
    assert "made writable" in cli("unprotect", "data/set").stdout
    cli("remote", "remove", "origin")
    assert cli("remote", "list", "--json") == []


def test_cli_register_get_list_and_errors(cli: Any, repo: Path, tmp_path: Path) -> None:
    write_tree(repo, {"raw/x.csv": "1\n"})
    registered = cli("register", "raw", "raw", "--description", "first", "--json")
    assert registered["uri"] == "datasets:/raw/1" and registered["description"] == "first"
    assert [d["uri"] for d in cli("list", "--json")] == ["datasets:/raw/1"]
    assert cli("show", "datasets:/raw/1", "--json")["digest"] == registered["digest"]
    cli("get", "datasets:/raw/1", "-o", str(tmp_path / "out"))
    assert (tmp_path / "out" / "x.csv").read_text() == "1\n"
    failed = cli("get", "datasets:/raw/7", "-o", str(tmp_path / "out"), code=1)
    assert "version 7 of dataset 'raw' not found" in failed.output
    assert "Traceback" not in failed.output
    failed = cli("push", code=1)
    assert "no remote configured" in failed.output and "remote add" in failed.output
