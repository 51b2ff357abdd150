"""config.local: this machine's remote settings, git-ignored, merged over the committed
config; secrets refused in the committed file and masked in listings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gitdata import commit, git, write_tree

from modelyard import data
from modelyard.errors import InvalidInput, NotFound
from modelyard.services.data.workspace import Workspace


def test_local_settings_stay_out_of_git_and_list_their_source(repo: Path, cli: Any) -> None:
    cli("remote", "add", "origin", "s3://bucket/x", "-o", "endpoint_url=http://shared")
    refused = cli("remote", "add", "other", "s3://b", "-o", "secret=abc", code=1)
    assert "--local" in refused.output and "abc" not in (repo / ".modelyard/config").read_text()
    cli("remote", "modify", "origin", "secret", "s3cr3t", code=1)
    cli("remote", "modify", "origin", "secret", "s3cr3t", "--local")
    cli("remote", "modify", "origin", "endpoint_url", "http://mine", "--local")
    cli("remote", "add", "scratch", "/tmp/scratch", "--local")
    assert "s3cr3t" not in (repo / ".modelyard/config").read_text()
    assert "s3cr3t" in (repo / ".modelyard/config.local").read_text()
    git(repo, "check-ignore", "-q", ".modelyard/config.local")  # exit 0: ignored

    listed = {r["name"]: r for r in cli("remote", "list", "--json")}
    assert listed["origin"]["options"] == {"endpoint_url": "http://mine", "secret": "***"}
    assert listed["origin"]["sources"] == {"url": ".modelyard/config",
                                           "endpoint_url": ".modelyard/config.local",
                                           "secret": ".modelyard/config.local"}
    assert listed["origin"]["default"] and listed["scratch"]["url"] == "/tmp/scratch"
    table = cli("remote", "list").output
    assert "s3cr3t" not in table and "secret=*** (local)" in table

    cli("remote", "modify", "origin", "endpoint_url", "--unset", "--local")
    with Workspace.find(repo) as ws:
        assert ws.remotes()["origin"].options == {"endpoint_url": "http://shared",
                                                  "secret": "s3cr3t"}
    cli("remote", "remove", "scratch")
    assert "scratch" not in (repo / ".modelyard/config.local").read_text()


def test_merged_settings_reach_the_remote(repo: Path, tmp_path: Path) -> None:
    write_tree(repo, {"d/a.txt": "alpha"})
    data.add("d")
    commit(repo, "data")
    data.remote_add("origin", str(tmp_path / "unreachable-on-this-machine"), default=True)
    data.remote_modify("origin", "url", str(tmp_path / "mine"), local=True)
    assert data.push().transferred == 2
    assert (tmp_path / "mine").is_dir() and not (tmp_path / "unreachable-on-this-machine").exists()
    assert "mine" not in (repo / ".modelyard/config").read_text()


def test_old_workspace_gets_config_local_ignored(repo: Path) -> None:
    ignore = repo / ".modelyard/.gitignore"
    ignore.write_text("/cache/\n/state.db*\n/tmp/")  # written before config.local existed
    data.remote_add("origin", "/tmp/x", local=True)
    assert ignore.read_text().splitlines()[-1] == "/config.local"
    git(repo, "check-ignore", "-q", ".modelyard/config.local")


def test_broken_local_layer_is_refused_with_a_hint(repo: Path) -> None:
    (repo / ".modelyard/config.local").write_text("remotes:\n  ghost:\n    options: {a: 1}\n")
    with pytest.raises(InvalidInput, match="ghost") as caught:
        data.remote_list()
    assert "remote add ghost" in (caught.value.hint or "")
    (repo / ".modelyard/config.local").unlink()
    data.remote_add("origin", "/tmp/x")
    with pytest.raises(NotFound, match="did you mean 'origin'"):
        data.remote_modify("orign", "url", "/tmp/y")
    with pytest.raises(NotFound, match=r"only in \.modelyard/config\.local"):
        data.remote_add("solo", "/tmp/s", local=True)
        data.remote_modify("solo", "anon", "true")
