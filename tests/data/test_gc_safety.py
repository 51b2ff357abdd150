"""``data gc`` never deletes what another branch, tag, stash, clone or registry still needs.

Issue 9, finding 2: a plain gc used to keep only the working tree's objects, and a remote gc
deleted a colleague's pushed data and a registry's model artifacts.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from gitdata import commit, git, read_tree, write_tree
from hypothesis import given, settings
from hypothesis import strategies as st

import modelyard
from modelyard import data
from modelyard.cli import data as data_cli
from modelyard.errors import InvalidInput
from modelyard.services.data import git as git_helpers
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.objects import ObjectStore

DAY = 24 * 3600


def _age(folder: Path, seconds: float = 2 * DAY) -> None:
    """Make every object under ``folder`` look written ``seconds`` ago (older than the grace)."""
    then = time.time() - seconds
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def _version(repo: Path, content: str, message: str) -> str:
    write_tree(repo, {"data/f.txt": content, "data/set/a.txt": content + "-a"})
    data.add("data/f.txt", "data/set")
    commit(repo, message)
    return content


def _cache(repo: Path) -> Path:
    return repo / ".modelyard" / "cache"


def _objects(store: Path) -> set[str]:
    return set(ObjectStore(str(store)).iter_digests())


def _unreachable_v2(repo: Path, push: bool = False) -> None:
    """Commit v1 and v2 (pushing each if asked), then drop v2 from every ref and reflog."""
    for content in ("v1", "v2"):
        _version(repo, content, content)
        if push:
            data.push()
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")


def _history(repo: Path) -> None:
    """v1 (tagged), v2 on a side branch, v3 and v4 stashed, v5 on main in the working tree."""
    _version(repo, "v1", "v1")
    git(repo, "tag", "v1.0")
    git(repo, "checkout", "-q", "-b", "side")
    _version(repo, "v2", "v2")
    git(repo, "checkout", "-q", "main")
    data.checkout(force=True)
    for content in ("v3", "v4"):  # two stashes: stash@{1} lives only in the stash reflog
        write_tree(repo, {"data/f.txt": content, "data/set/a.txt": content + "-a"})
        data.add("data/f.txt", "data/set")
        git(repo, "stash", "-q")
    _version(repo, "v5", "v5")
    _age(_cache(repo))


def _check_out(repo: Path, rev: str) -> dict[str, bytes]:
    git(repo, "checkout", "-q", rev)
    data.checkout(force=True)
    return read_tree(repo / "data")


def test_plain_gc_keeps_tags_branches_and_stashes(repo: Path) -> None:
    _history(repo)
    before = _objects(_cache(repo))
    report = data.gc()
    assert report.removed == [] and _objects(_cache(repo)) == before
    assert _check_out(repo, "v1.0")["f.txt"] == b"v1"
    assert _check_out(repo, "side")["f.txt"] == b"v2"
    assert _check_out(repo, "stash@{1}")["f.txt"] == b"v3"
    assert _check_out(repo, "stash@{0}")["set/a.txt"] == b"v4-a"


def test_only_unreachable_data_goes_and_the_workspace_scope_is_explicit(repo: Path) -> None:
    _history(repo)
    git(repo, "stash", "clear")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    report = data.gc()
    # v3 and v4 were only in stashes: their f.txt, a.txt and manifest go; the rest stays
    assert len(report.removed) == 6 and report.removed_bytes > 0
    assert _check_out(repo, "v1.0")["f.txt"] == b"v1"
    git(repo, "checkout", "-q", "main")
    narrowed = data.gc(workspace=True, dry_run=True)
    assert len(narrowed.removed) == 6  # v1 and v2: only with --workspace
    assert data.gc(all_tags=True, dry_run=True).removed_count == 3  # keeps v1, drops v2
    assert data.gc(all_branches=True, dry_run=True).removed_count == 3  # keeps v2, drops v1
    assert data.gc(all_commits=True, dry_run=True).removed == []  # documented, still accepted


def test_the_index_is_kept(repo: Path) -> None:
    _version(repo, "v1", "v1")
    write_tree(repo, {"data/f.txt": "staged"})
    data.add("data/f.txt")
    git(repo, "add", "data/f.txt.yard")
    staged = Workspace.find(repo).read_pointer("data/f.txt.yard").pointer.digest
    write_tree(repo, {"data/f.txt": "worktree"})
    data.add("data/f.txt")  # the working tree now points elsewhere; the index still at staged
    _age(_cache(repo))
    data.gc(workspace=True)
    assert ObjectStore(str(_cache(repo))).exists(staged)


def test_history_is_read_with_a_fixed_number_of_git_processes(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        _version(repo, f"v{i}", f"v{i}")
    calls: list[list[str]] = []
    real = git_helpers.run

    def counting(root: Any, args: Any, stdin: bytes | None = None) -> bytes:
        calls.append(list(args))
        return real(root, args, stdin)

    monkeypatch.setattr(git_helpers, "run", counting)
    assert data.gc(dry_run=True, grace=0).removed == []
    assert len(calls) <= 5, calls  # not one process per commit


def test_young_objects_are_never_removed(repo: Path) -> None:
    _version(repo, "v1", "v1")
    git(repo, "stash", "list")
    _version(repo, "v2", "v2")
    git(repo, "reset", "-q", "--hard", "HEAD~1")  # v2's commit is now only in the reflog
    git(repo, "reflog", "expire", "--expire=now", "--all")
    assert data.gc(dry_run=True).removed == []  # all written seconds ago: a live add/push
    assert data.gc(dry_run=True).young == 3
    assert data.gc(dry_run=True, grace=0).removed_count == 3


def test_cli_asks_lists_and_refuses_without_a_terminal(
        cli: Any, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _unreachable_v2(repo)
    data.checkout(force=True)
    _age(_cache(repo))
    before = _objects(_cache(repo))
    dry = cli("gc", "--dry-run", "--json")
    assert dry["removed_count"] == 3 and dry["dry_run"] is True
    assert {o["digest"] for o in dry["objects"]} == set(dry["removed"])
    assert dry["removed_bytes"] == sum(o["size"] for o in dry["objects"])
    refused = cli("gc", code=1)
    assert "no terminal to confirm" in refused.output and "--yes" in refused.output
    assert _objects(_cache(repo)) == before
    monkeypatch.setattr(data_cli, "_interactive", lambda: True)
    declined = cli("gc", input="n\n")
    assert "remove 3 object(s)" in declined.output and "nothing removed" in declined.output
    assert _objects(_cache(repo)) == before
    cli("gc", input="y\n")
    assert len(_objects(_cache(repo))) == len(before) - 3
    assert cli("gc", "--yes", "--json")["removed"] == []
    assert _check_out(repo, "main")["f.txt"] == b"v1"


def test_cli_grace_option(cli: Any, repo: Path) -> None:
    _unreachable_v2(repo)
    assert cli("gc", "--dry-run", "--json")["young"] == 3
    assert cli("gc", "--dry-run", "--grace", "0", "--json")["removed_count"] == 3
    bad = cli("gc", "--grace", "soon", code=1)
    assert "--grace" in bad.output


# -- remotes ----------------------------------------------------------------------------------


def _clone(origin: Path, target: Path) -> Path:
    git(origin.parent, "clone", "-q", str(origin), str(target))
    for key, value in (("user.name", "Bo"), ("user.email", "bo@example.com"),
                       ("commit.gpgsign", "false")):
        git(target, "config", key, value)
    return target


def test_remote_gc_does_not_delete_a_colleagues_pushed_branch(
        cli: Any, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = tmp_path / "shared"
    data.remote_add("origin", str(remote), default=True)
    _version(repo, "v1", "v1")
    data.push()
    colleague = _clone(repo, tmp_path / "colleague")
    monkeypatch.chdir(colleague)
    git(colleague, "checkout", "-q", "-b", "bo-experiment")
    _version(colleague, "bo", "bo's data")
    data.push()  # a branch this clone never sees: not pushed to git, or not fetched yet
    monkeypatch.chdir(repo)
    _age(remote)
    before = _objects(remote)
    refused = cli("gc", "--remote", "origin", "--yes", code=1)
    assert "other clones" in refused.output and "--only-this-clone" in refused.output
    assert _objects(remote) == before
    preview = cli("gc", "--remote", "origin", "--only-this-clone", "--dry-run", "--json")
    assert preview["removed_count"] == 3  # exactly bo's data: what the flag accepts to lose
    monkeypatch.chdir(colleague)
    (colleague / ".modelyard" / "cache").rename(tmp_path / "gone")
    data.pull(force=True)
    assert read_tree(colleague / "data")["f.txt"] == b"bo"


def test_remote_gc_only_this_clone_respects_the_grace(cli: Any, repo: Path,
                                                      tmp_path: Path) -> None:
    remote = tmp_path / "shared"
    data.remote_add("origin", str(remote), default=True)
    _unreachable_v2(repo, push=True)
    data.checkout(force=True)
    young = cli("gc", "-r", "origin", "--only-this-clone", "--yes", "--json")
    assert young["removed"] == [] and young["young"] == 3
    _age(remote)
    done = cli("gc", "-r", "origin", "--only-this-clone", "--yes", "--json")
    assert done["removed_count"] == 3
    assert data.status(cloud=True).clean


def _registry_with_a_model(store: Path, tmp_path: Path) -> modelyard.Registry:
    model = tmp_path / "model"
    write_tree(model, {"weights.bin": b"\x00\x01" * 100, "config.json": "{}"})
    reg = modelyard.connect(f"sqlite:///{tmp_path / 'reg.db'}", store=str(store), user="ana")
    reg.register("fraud", str(model))
    return reg


@pytest.mark.parametrize("where", ["same", "parent", "inside"])
def test_remote_gc_refuses_a_registry_store(cli: Any, repo: Path, tmp_path: Path,
                                            where: str) -> None:
    store = tmp_path / "shared" / "registry"
    reg = _registry_with_a_model(store, tmp_path)
    url = {"same": store, "parent": store.parent, "inside": store / "ab"}[where]
    data.remote_add("origin", str(url), default=True)
    _version(repo, "v1", "v1")
    data.push()
    _age(store.parent)
    before = _objects(store)
    refused = cli("gc", "--remote", "origin", "--only-this-clone", "--yes", code=1)
    assert "registry" in refused.output and "hint" in refused.output
    assert _objects(store) == before
    reg.download("models:/fraud/1", str(tmp_path / "out"))
    assert (tmp_path / "out" / "weights.bin").exists()


def test_remote_gc_refuses_the_configured_registry_store_even_without_a_marker(
        cli: Any, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "objects"
    store.mkdir()
    monkeypatch.setenv("MODELYARD_STORE_URI", str(store))
    data.remote_add("origin", str(store), default=True)
    refused = cli("gc", "--remote", "origin", "--only-this-clone", "--dry-run", code=1)
    assert "registry" in refused.output
    with pytest.raises(InvalidInput, match="registry"):
        data.gc(remote="origin", only_this_clone=True, dry_run=True)
    home = tmp_path / "home2"  # the embedded layout: registry.db beside objects/
    (home / "objects").mkdir(parents=True)
    (home / "registry.db").write_bytes(b"")
    data.remote_add("embedded", str(home / "objects"))
    with pytest.raises(InvalidInput, match="registry"):
        data.gc(remote="embedded", only_this_clone=True, dry_run=True)


def test_remote_gc_on_s3(repo: Path, s3_location: Any) -> None:
    data.remote_add("origin", s3_location.url, default=True,
                    options=s3_location.storage_options)
    _unreachable_v2(repo, push=True)
    data.checkout(force=True)
    with pytest.raises(InvalidInput, match="other clones"):
        data.gc(remote="origin")
    assert data.gc(remote="origin", only_this_clone=True).young == 3  # just uploaded
    assert data.gc(remote="origin", only_this_clone=True, grace=0).removed_count == 3
    assert data.status(cloud=True).clean
    registry_store = f"{s3_location.url}/registry"
    reg = _registry_with_a_model_s3(registry_store, s3_location, repo.parent)
    data.remote_add("models", registry_store, options=s3_location.storage_options)
    with pytest.raises(InvalidInput, match="registry"):
        data.gc(remote="models", only_this_clone=True, grace=0)
    assert reg.verify().ok


def _registry_with_a_model_s3(url: str, s3: Any, tmp_path: Path) -> modelyard.Registry:
    model = tmp_path / "model"
    write_tree(model, {"weights.bin": b"\x02" * 50})
    reg = modelyard.connect(f"sqlite:///{tmp_path / 'reg.db'}", store=url, user="ana",
                            storage_options=s3.storage_options)
    reg.register("fraud", str(model))
    return reg


# -- the history walk equals listing every commit's tree -------------------------------------

_commit = st.tuples(
    st.lists(st.integers(0, 30), max_size=2),  # parents: indexes into earlier commits
    st.dictionaries(st.sampled_from(["a.yard", "d/b.yard", "d/e/c.yard", "x.txt", "a.yard.bak"]),
                    st.one_of(st.none(), st.sampled_from(["1", "2", "3", "4"])), max_size=3))


@settings(max_examples=15, deadline=None)
@given(st.lists(_commit, min_size=1, max_size=12))
def test_history_walk_finds_every_pointer_blob_of_every_commit(
        tmp_path_factory: pytest.TempPathFactory, history: list[Any]) -> None:
    """Random DAGs with merges (also "evil" ones that change files) and deletions: one
    ``git log`` walk sees exactly the pointer blobs that ``ls-tree`` of each commit lists."""
    root = tmp_path_factory.mktemp("dag")
    git(root, "init", "-q", "-b", "main")
    script = []
    for i, (parents, changes) in enumerate(history):
        chosen = sorted({p % i for p in parents}) if i else []
        branch = f"refs/heads/b{i % 3}"
        script.append("" if chosen else f"reset {branch}\n")  # a root: no parent at all
        script.append(f"commit {branch}\nmark :{i + 1}\n"
                      f"committer t <t@e> {1700000000 + i} +0000\ndata 1\nc\n")
        script.extend(f"from :{chosen[0] + 1}\n" for _ in chosen[:1])
        script.extend(f"merge :{p + 1}\n" for p in chosen[1:])
        for path, content in sorted(changes.items()):
            body = f"digest: blake3:{content * 64}\n" if content else ""
            script.append(f"M 100644 inline {path}\ndata {len(body)}\n{body}\n" if content
                          else f"D {path}\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, check=True,
                   input="".join(script).encode())
    expected: set[str] = set()
    for rev in git_helpers.run(str(root), ["rev-list", "--all"]).decode().split():
        expected.update(git_helpers.pointer_blobs(str(root), rev).values())
    assert git_helpers.history_pointer_blobs(str(root)) == expected
