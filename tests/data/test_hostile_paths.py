"""Finding 1 of issue 9: hostile pointer names and manifests must never make checkout
write or delete outside the tracked output (.git, .modelyard, the work tree, beyond it)."""

from __future__ import annotations

import os
import posixpath
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gitdata import commit, git, write_tree
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from modelyard import data
from modelyard.cli.main import app
from modelyard.domain import pointer as pointers
from modelyard.domain import workpaths
from modelyard.errors import InvalidInput
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.manifest import Entry, Manifest
from modelyard.storage.content.objects import ObjectStore

# Pieces hostile names are made of: dots, separators, reserved names in every disguise.
_PIECES = [".", "..", "...", "/", "\\", "\x00", "\n", " ", ".git", ".GIT", ".Git", "git",
           ".modelyard", ".MODELYARD", "modelyard", "\uff0e", "\uff47\uff49\uff54",  # fullwidth
           "\u200c", "\ufeff", "\uff0f", "~1", "GIT~1", "C:", "a", "data", "etc", ".yard",
           "\u0130", "\u212a", "\ud800"]
hostile_names = st.lists(st.sampled_from(_PIECES) | st.text(max_size=3), max_size=8).map("".join)


def _canonical(component: str) -> str:
    text = unicodedata.normalize("NFKC", component)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return text.casefold().rstrip(". ")


@settings(max_examples=2000, deadline=None)
@given(hostile_names)
def test_accepted_names_stay_inside_the_tree_and_out_of_git(name: str) -> None:
    try:
        accepted = workpaths.check_data_path(name, "x.yard")
    except InvalidInput as exc:
        assert "x.yard" in exc.message and exc.hint
        return
    joined = posixpath.normpath(posixpath.join("/root", accepted))
    assert joined.startswith("/root/") and joined != "/root"
    for component in accepted.split("/"):
        assert _canonical(component) not in ("", ".", "..", ".git", ".modelyard")
        assert not any(ord(c) < 32 for c in component) and "\\" not in component


@settings(max_examples=2000, deadline=None)
@given(hostile_names)
def test_a_name_is_reserved_exactly_when_its_canonical_form_is(name: str) -> None:
    """``is_reserved``'s shortcut for plain ASCII names agrees with the full rule."""
    assert workpaths.is_reserved(name) == (workpaths.canonical_name(name)
                                           in workpaths.RESERVED)
    if name.isascii() and _canonical(name) in (".git", ".modelyard", "git~1", "modely~1"):
        assert workpaths.is_reserved(name)


@pytest.mark.parametrize("name", [
    ".git", "..", ".", "", ".modelyard", "sub/.git", "x/../../etc", ".GIT", ".Git",
    "\uff0egit", "\uff0e\uff47\uff49\uff54", ".git.", ".git ", ".git. .", ".g\u200cit",
    "a/\ufeff.modelyard", "a\x00b", "a\\..\\b", "/etc/passwd", "C:/x", "a//b", "a/./b",
    ".MODELYARD.", "GIT~1", "\uff0e\uff0e", "...", "a\nb",
])
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match=r"x\.yard"):
        workpaths.check_data_path(name, "x.yard")


@pytest.mark.parametrize("name", ["data/train.csv", "a", "données/é.csv", ".github/x",
                                  ".gitignore-data", "git", "modelyard", "a.b.c", "x/.gitx"])
def test_ordinary_names_are_accepted(name: str) -> None:
    assert workpaths.check_data_path(name, "x.yard") == name


@pytest.fixture(scope="module")
def tree() -> Iterator[Workspace]:
    """A workspace whose folders include symlinks out of the tree and into .git."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        (root / ".git").mkdir(parents=True)
        (root / "real").mkdir()
        (Path(tmp) / "outside").mkdir()
        os.symlink(Path(tmp) / "outside", root / "out")
        os.symlink(".git", root / "lnk")
        os.symlink("real", root / "inside")
        git(root, "init", "-q")
        with Workspace.init(root) as ws:
            yield ws


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["out", "lnk", "inside", "real", "new", "..", ".git", "a"]),
                min_size=1, max_size=4).map("/".join))
def test_targets_never_resolve_outside_or_into_reserved_folders(tree: Workspace,
                                                                name: str) -> None:
    try:
        full = tree.target(name, "p.yard")
    except InvalidInput as exc:
        assert "p.yard" in exc.message
        return
    real_root = os.path.realpath(tree.root)
    inside = os.path.relpath(os.path.realpath(os.path.dirname(full)), real_root)
    assert not inside.startswith("..")
    assert not any(_canonical(c) in (".git", ".modelyard") for c in inside.split(os.sep))


# -- as a user would meet it: a hostile repository, cloned, checked out with --force --------


def _hostile_upstream(tmp_path: Path, pointer_name: str) -> tuple[Path, str]:
    """A repository whose committed pointer ``pointer_name`` names a folder of one file;
    the folder's objects are on the repository's default remote."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    git(upstream, "config", "user.name", "Mallory")
    git(upstream, "config", "user.email", "m@example.com")
    write_tree(upstream, {"README.md": "hello", "src/code.py": "print(1)"})
    Workspace.init(upstream).close()
    data.remote_add("origin", str(tmp_path / "remote"), default=True, root=upstream)
    remote = ObjectStore(str(tmp_path / "remote"))
    payload = remote.put_bytes(b"pwned")
    manifest = Manifest([Entry("pwned.txt", payload, 5)])
    digest = remote.put_bytes(manifest.to_bytes())
    hostile = upstream / pointer_name
    hostile.parent.mkdir(parents=True, exist_ok=True)
    hostile.write_text(pointers.render(pointers.Pointer(digest, "dir", 5, 1)))
    commit(upstream, "innocent-looking commit")
    return upstream, digest


def _cli(clone: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(clone)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["data", *args])


def _snapshot(clone: Path) -> dict[str, Any]:
    return {
        "head": git(clone, "rev-parse", "HEAD"),
        "git_status": git(clone, "status", "--porcelain"),
        "files": sorted(str(p.relative_to(clone)) for p in clone.rglob("*")),
        "config": (clone / ".modelyard/config").read_text(),
    }


HOSTILE = [".git.yard", "..yard", ".modelyard.yard", "sub/.git.yard", ".GIT.yard", ".Git.yard",
           "\uff0egit.yard", ".git .yard", ".git..yard", ".modelyard .yard", "sub/.yard",
           "a\\..\\b.yard"]


@pytest.mark.parametrize("pointer_name", HOSTILE)
def test_cloned_hostile_repository_cannot_damage_the_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pointer_name: str
) -> None:
    upstream, _ = _hostile_upstream(tmp_path, pointer_name)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    # the attacker's objects already in the local cache, as after an earlier fetch
    with Workspace.find(clone) as ws:
        remote = ObjectStore(str(tmp_path / "remote"))
        for d in remote.iter_digests():
            ws.cache.put_bytes(remote.get_bytes(d))
    before = _snapshot(clone)
    cli = _cli(clone, monkeypatch, tmp_path)
    for args in (("checkout", "--force"), ("pull", "--force"), ("checkout", "-f", pointer_name),
                 ("status",)):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert pointer_name in result.output, result.output
        assert "Traceback" not in result.output and "hint:" in result.output
        assert _snapshot(clone) == before
    assert not list(clone.rglob("pwned.txt"))
    assert len(list(ObjectStore(str(clone / ".modelyard/cache")).iter_digests())) == 2


def test_symlinked_parent_folder_cannot_lead_a_write_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "f").write_text("precious")
    upstream, _ = _hostile_upstream(tmp_path, "ok/x.yard")
    os.symlink("../victim", upstream / "link")
    commit(upstream, "a symlink")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    with Workspace.find(clone) as ws:
        ws.cache.put_bytes(b"pwned")
    (victim / "f.yard").write_text(pointers.render(pointers.Pointer(
        ObjectStore(str(tmp_path / "remote")).put_bytes(b"pwned"), "file", 5, 1)))
    cli = _cli(clone, monkeypatch, tmp_path)
    result = cli("checkout", "--force", "link/f")
    assert result.exit_code == 1, result.output
    assert "symlink" in result.output and "Traceback" not in result.output
    assert (victim / "f").read_text() == "precious"


def test_symlink_at_a_folder_output_is_replaced_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    upstream, _ = _hostile_upstream(tmp_path, "data.yard")
    os.symlink("../victim", upstream / "data")
    commit(upstream, "data is a link")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    cli = _cli(clone, monkeypatch, tmp_path)
    result = cli("pull")
    assert result.exit_code == 1 and "symlink to a folder" in result.output, result.output
    assert cli("pull", "--force").exit_code == 0
    assert (victim / "keep.txt").read_text() == "precious" and not (victim / "pwned.txt").exists()
    assert not (clone / "data").is_symlink() and (clone / "data/pwned.txt").read_text() == "pwned"


def test_hostile_manifest_entries_are_refused(repo: Path, ws: Workspace) -> None:
    payload = ws.cache.put_bytes(b"pwned")
    for entry in (".git/hooks/post-checkout", "sub/.GIT/config", "\uff0emodelyard/config"):
        digest = ws.cache.put_bytes(Manifest([Entry(entry, payload, 5)]).to_bytes())
        (repo / "d.yard").write_text(pointers.render(pointers.Pointer(digest, "dir", 5, 1)))
        with pytest.raises(InvalidInput, match=r"d\.yard names an unsafe data path"):
            data.checkout(force=True)
        assert not (repo / "d").exists()


def test_force_keeps_a_nested_git_folder_and_never_follows_folder_links(
    repo: Path, ws: Workspace
) -> None:
    write_tree(repo, {"d/a.txt": "a", "d/b.txt": "b"})
    data.add("d")
    commit(repo, "d")
    write_tree(repo, {"d/.git/config": "nested repository"})
    assert data.status().clean  # .git inside a data folder is not data
    write_tree(repo, {"d/extra.txt": "local"})
    os.symlink(ws.cache.root, repo / "d/cachelink")
    with pytest.raises(InvalidInput, match="symlinked folder"):
        data.checkout(force=True)
    os.unlink(repo / "d/cachelink")
    data.checkout(force=True)  # discards the untracked extra.txt, as --force says
    assert (repo / "d/.git/config").read_text() == "nested repository"
    assert not (repo / "d/extra.txt").exists()
    assert len(list(ws.cache.iter_digests())) == 3


def test_a_file_pointer_never_deletes_a_folder_holding_git(repo: Path) -> None:
    write_tree(repo, {"d": "a file"})
    data.add("d")
    os.remove(repo / "d")
    write_tree(repo, {"d/.git/HEAD": "ref: refs/heads/main", "d/x.txt": "x"})
    with pytest.raises(InvalidInput, match="never deletes"):
        data.checkout(force=True)
    assert (repo / "d/.git/HEAD").exists()


def test_nested_pointers_are_refused(repo: Path) -> None:
    write_tree(repo, {"d/a.txt": "a", "e": "e"})
    data.add("d", "e")
    os.rename(repo / "e.yard", repo / "d/a.txt.yard")
    git(repo, "add", "-f", "d/a.txt.yard")  # as a hostile repository would have committed it
    with pytest.raises(InvalidInput, match="inside d"):
        data.checkout(force=True)


def test_add_refuses_hostile_paths_and_skips_nested_git(repo: Path) -> None:
    write_tree(repo, {"d/.git/config": "x", "d/.Modelyard/y": "y", "d/f.txt": "f"})
    added = data.add("d")[0]
    assert added.tracked.pointer.file_count == 1
    (repo / ".GIT").mkdir()
    with pytest.raises(InvalidInput, match="never writes"):
        data.add(".GIT")


def test_unprotect_copies_only_links_into_the_cache(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("not yours")
    write_tree(repo, {"d/a.txt": "a"})
    data.add("d")
    os.symlink(secret, repo / "d/leak")
    assert data.unprotect("d") == []
    assert (repo / "d/leak").is_symlink()


def test_diff_refuses_a_hostile_pointer_in_history(repo: Path) -> None:
    write_tree(repo, {"f.txt": "x"})
    data.add("f.txt")
    os.rename(repo / "f.txt.yard", repo / ".git .yard")
    commit(repo, "hostile")
    with pytest.raises(InvalidInput, match=r"HEAD:\.git \.yard"):
        data.diff("HEAD")
