"""Finding 3 of issue 9: an in-place edit of a checked-out file must not corrupt the cache
(private copies by default), and when it does (hardlinks on request) ``status`` says so
and ``pull`` repairs the cache from the remote."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from gitdata import commit, read_tree, write_tree
from typer.testing import CliRunner

from modelyard import data
from modelyard.cli.main import app
from modelyard.errors import IntegrityError, InvalidInput
from modelyard.services.data.workspace import Workspace
from modelyard.storage.index import state_cache


def _overwrite(path: Path, content: bytes) -> None:
    """``echo … > path``: root writes through the read-only bit; anyone else chmods first."""
    if os.geteuid() != 0:
        os.chmod(path, 0o644)
    with open(path, "wb") as f:  # truncates and rewrites the same inode
        f.write(content)


def _use_links(repo: Path, links: list[str]) -> None:
    with Workspace.find(repo) as ws:
        ws.config.links = links
        ws.save_config()


def _dataset(repo: Path, tmp_path: Path, url: str | None = None,
             options: dict[str, Any] | None = None) -> dict[str, bytes]:
    write_tree(repo, {"d/a.txt": "alpha", "d/b.txt": "beta", "f.bin": b"\x00" * 100})
    data.add("d", "f.bin")
    data.remote_add("origin", url or str(tmp_path / "remote"), default=True, options=options)
    data.push()
    commit(repo, "v1")
    expected = _data(repo)
    for rel in ("d/a.txt", "d/b.txt", "f.bin"):
        os.remove(repo / rel)
    return expected


def _data(repo: Path) -> dict[str, bytes]:
    return {**{f"d/{k}": v for k, v in read_tree(repo / "d").items()},
            "f.bin": (repo / "f.bin").read_bytes()}


def _cache_intact(ws: Workspace) -> bool:
    return all(ws.cache.verify(d) for d in ws.cache.iter_digests())


def test_default_checkout_gives_private_copies_so_an_overwrite_leaves_the_cache_intact(
    repo: Path, ws: Workspace, tmp_path: Path
) -> None:
    _dataset(repo, tmp_path)
    report = data.checkout()
    assert set(report.links) <= {"reflink", "copy"} and sum(report.links.values()) == 3
    target = repo / "d/a.txt"
    assert os.stat(target).st_nlink == 1 and os.stat(target).st_mode & 0o200
    _overwrite(target, b"root was here")
    assert _cache_intact(ws)
    status = data.status()
    assert status.modified == ["d"] and status.corrupted_in_cache == []


def test_hardlink_overwrite_is_detected_by_status_and_repaired_by_pull(
    repo: Path, ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_links(repo, ["hardlink", "copy"])
    expected = _dataset(repo, tmp_path)
    assert data.checkout().links == {"hardlink": 3}
    assert data.status().clean
    _overwrite(repo / "d/a.txt", b"root was here")
    _overwrite(repo / "f.bin", b"\x01" * 7)
    assert not _cache_intact(ws)  # what hardlinks risk: the cache object was rewritten

    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    shown = json.loads(runner.invoke(app, ["data", "status", "--json"]).stdout)
    assert shown["corrupted_in_cache"] == ["d", "f.bin"] and shown["modified"] == ["d", "f.bin"]
    text = runner.invoke(app, ["data", "status"]).output
    assert "corrupted in cache: d" in text and "data pull" in text

    for rel in ("d/a.txt", "f.bin"):
        os.remove(repo / rel)
    with pytest.raises(IntegrityError, match="corrupted") as caught:
        data.checkout(force=True)
    assert "data pull" in (caught.value.hint or "")

    result = runner.invoke(app, ["data", "pull", "--force"])
    assert result.exit_code == 0, result.output
    assert _cache_intact(ws)
    assert _data(repo) == expected
    assert data.status().clean
    data.checkout(force=True)


def test_pull_repairs_the_cache_but_keeps_the_edited_file_unless_forced(
    repo: Path, ws: Workspace, tmp_path: Path
) -> None:
    _use_links(repo, ["hardlink", "copy"])
    _dataset(repo, tmp_path)
    data.checkout()
    _overwrite(repo / "d/b.txt", b"an edit worth keeping")
    fetched = data.fetch()
    assert fetched.transferred == 1 and _cache_intact(ws)
    with pytest.raises(InvalidInput, match="local changes"):
        data.pull()
    assert (repo / "d/b.txt").read_bytes() == b"an edit worth keeping"
    assert data.status().corrupted_in_cache == []


def _count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    hashed: list[str] = []
    real = state_cache.hash_files  # type: ignore[attr-defined]

    def counting(paths: Any, workers: int | None = None, **kw: Any) -> list[str]:
        hashed.extend(os.fspath(p) for p in paths)
        return real(paths, workers, **kw)

    monkeypatch.setattr(state_cache, "hash_files", counting)
    return hashed


def test_a_file_object_stored_by_add_is_not_hashed_again_by_status(
    repo: Path, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(repo, {"big.bin": b"\x07" * 100_000})
    data.add("big.bin")
    hashed = _count_hashing(monkeypatch)
    assert data.status().clean
    assert not [p for p in hashed if p.startswith(ws.cache.root)]


def test_only_cache_objects_whose_stat_changed_are_hashed_again(
    repo: Path, ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_links(repo, ["hardlink", "copy"])
    _dataset(repo, tmp_path)
    data.checkout()
    data.status()  # the first look hashes each cache object once
    hashed = _count_hashing(monkeypatch)
    assert data.status().clean
    assert hashed == []
    _overwrite(repo / "d/a.txt", b"x")
    data.status()
    in_cache = [p for p in hashed if p.startswith(ws.cache.root)]
    assert len(in_cache) == 1  # only the rewritten object


def test_a_damaged_manifest_is_reported_and_fetched_again(
    repo: Path, ws: Workspace, tmp_path: Path
) -> None:
    _dataset(repo, tmp_path)
    data.checkout()
    digest = ws.read_pointer("d.yard").pointer.digest
    victim = Path(ws.cache.local_path(digest))
    _overwrite(victim, b"{}")
    assert data.status().corrupted_in_cache == ["d"]
    assert data.fetch().transferred == 1
    assert ws.cache.verify(digest) and data.status().clean


def test_the_old_default_link_order_in_existing_configs_means_the_new_default(
    repo: Path, ws: Workspace
) -> None:
    assert "link" not in (repo / ".modelyard/config").read_text()
    (repo / ".modelyard/config").write_text(
        "core:\n  remote: null\nremotes: {}\ncache:\n  link: [reflink, hardlink, symlink, copy]\n")
    assert Workspace.find(repo).config.links == ["reflink", "copy"]
    (repo / ".modelyard/config").write_text("cache:\n  link: [hardlink, copy]\n")
    assert Workspace.find(repo).config.links == ["hardlink", "copy"]


@pytest.mark.s3
def test_pull_repairs_a_corrupted_cache_object_from_s3(
    repo: Path, ws: Workspace, tmp_path: Path, s3_location: Any
) -> None:
    _use_links(repo, ["hardlink", "copy"])
    expected = _dataset(repo, tmp_path, s3_location.url,
                        {"endpoint_url": s3_location.endpoint_url})
    data.checkout()
    _overwrite(repo / "d/a.txt", b"root was here")
    assert data.status().corrupted_in_cache == ["d"]
    fetched, _ = data.pull(force=True)
    assert fetched.transferred == 1
    assert _cache_intact(ws) and _data(repo) == expected and data.status().clean
