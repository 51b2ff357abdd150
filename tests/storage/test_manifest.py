"""Manifests: canonical bytes, validation of untrusted input, directory scans, diffs."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidInput
from modelyard.storage.content.hashing import hash_bytes, hash_files
from modelyard.storage.content.manifest import (
    EXEC_MODE,
    FILE_MODE,
    Entry,
    Manifest,
    check_path,
    diff,
    scan_directory,
)

D1 = "blake3:" + "1" * 64
D2 = "blake3:" + "2" * 64


def hash_many(paths: Sequence[str]) -> Sequence[str]:
    return hash_files(paths)


def raw_manifest(*entries: dict[str, object], fmt: object = 1) -> bytes:
    return json.dumps({"format": fmt, "entries": list(entries)}).encode()


def entry(
    path: object, digest: object = D1, size: object = 1, mode: object = 0o644
) -> dict[str, object]:
    return {"path": path, "digest": digest, "size": size, "mode": mode}


def test_canonical_bytes_are_sorted_compact_and_hashed() -> None:
    manifest = Manifest([Entry("b/x", D2, 2, EXEC_MODE), Entry("a", D1, 1)])
    expected = (
        '{"format":1,"entries":['
        f'{{"path":"a","digest":"{D1}","size":1,"mode":420}},'
        f'{{"path":"b/x","digest":"{D2}","size":2,"mode":493}}]}}'
    ).encode()
    assert manifest.to_bytes() == expected
    assert manifest.digest == hash_bytes(expected)
    assert (manifest.file_count, manifest.total_size) == (2, 3)
    assert [e.path for e in manifest] == ["a", "b/x"]
    assert Manifest.from_bytes(expected) == manifest


def test_order_of_input_does_not_change_the_digest() -> None:
    entries = [Entry("z", D1, 1), Entry("a/b", D2, 2), Entry("a.txt", D1, 1)]
    assert Manifest(entries).digest == Manifest(reversed(entries)).digest


@pytest.mark.parametrize(
    "path",
    [
        "../x",
        "a/../../x",
        "..",
        "/etc/passwd",
        "a//b",
        "a/",
        "a\\b",
        "..\\x",
        "",
        ".",
        "./a",
        "a/./b",
        "x\x00y",
        7,
        None,
    ],
)
def test_unsafe_paths_are_refused_naming_the_path(path: object) -> None:
    with pytest.raises(InvalidInput) as info:
        Manifest.from_bytes(raw_manifest(entry(path)))
    assert repr(path) in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not a valid manifest"),
        (b"\xff\xfe", "not a valid manifest"),
        (b"[]", "unsupported manifest format"),
        (raw_manifest(fmt=2), "unsupported manifest format 2"),
        (b'{"format": 1}', "no 'entries' list"),
        (raw_manifest({"path": "a"}), "malformed manifest entry"),
        (raw_manifest(entry("a", digest="sha256:00")), "invalid digest"),
        (raw_manifest(entry("a", size=-1)), "invalid size"),
        (raw_manifest(entry("a", size=1.5)), "invalid size"),
        (raw_manifest(entry("a", mode=0o777)), "invalid mode"),
        (raw_manifest(entry("a", mode=420.0)), "invalid mode"),
        (raw_manifest(entry("a"), entry("a", digest=D2)), "duplicate path 'a'"),
        (raw_manifest(entry("a"), entry("a/b")), "'a' in manifest is both a file and a directory"),
    ],
)
def test_malformed_manifests_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Manifest.from_bytes(data)


def test_check_path_accepts_ordinary_names() -> None:
    for path in ["a", "a/b/c.txt", ".hidden", "..dots", "a..b/c", "名前/ファイル", "sp ace"]:
        assert check_path(path) == path


_SEGMENT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="/\\\x00"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))


def _without_conflicts(paths: list[str]) -> list[str]:
    parents = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    return [p for p in paths if p not in parents]


@settings(deadline=None)  # CPU time varies on shared CI machines; correctness does not
@given(
    st.lists(st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join), unique=True, max_size=30)
    .map(_without_conflicts)
    .flatmap(
        lambda paths: st.tuples(
            st.just(paths),
            st.lists(st.integers(0, 2**40), min_size=len(paths), max_size=len(paths)),
            st.lists(st.booleans(), min_size=len(paths), max_size=len(paths)),
        )
    )
)
def test_round_trip_of_generated_safe_manifests(
    generated: tuple[list[str], list[int], list[bool]],
) -> None:
    paths, sizes, executable = generated
    manifest = Manifest(
        Entry(p, hash_bytes(p.encode()), size, EXEC_MODE if x else FILE_MODE)
        for p, size, x in zip(paths, sizes, executable, strict=True)
    )
    data = manifest.to_bytes()
    again = Manifest.from_bytes(data)
    assert again == manifest
    assert again.to_bytes() == data
    assert again.digest == manifest.digest == hash_bytes(data)


@given(st.lists(st.tuples(st.text(min_size=1).filter(lambda p: check_path_ok(p)),
                          st.integers(0, 2**62), st.sampled_from([FILE_MODE, EXEC_MODE])),
                unique_by=lambda t: t[0], max_size=20))
@settings(max_examples=200)
def test_canonical_bytes_are_what_json_dumps_writes(
    rows: list[tuple[str, int, int]],
) -> None:
    """The entry-by-entry encoding is the documented one, escapes and all: quotes,
    backslash-free control characters, non-ASCII, U+2028 (digests in use depend on it)."""
    try:
        manifest = Manifest(Entry(p, hash_bytes(p.encode()), size, mode)
                            for p, size, mode in rows)
    except InvalidInput:  # e.g. one path a folder of another: not a manifest
        return
    doc = {"format": 1, "entries": [{"path": e.path, "digest": e.digest, "size": e.size,
                                     "mode": e.mode} for e in manifest]}
    assert manifest.to_bytes() == json.dumps(doc, ensure_ascii=False,
                                             separators=(",", ":")).encode()


def check_path_ok(path: str) -> bool:
    try:
        check_path(path)
    except InvalidInput:
        return False
    return True


def test_manifest_of_a_scan_is_the_validated_manifest(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.txt", "a b.txt", 'sub/é"x', "sub/z", "c"):
        (tmp_path / name).write_text(name)
    os.chmod(tmp_path / "c", 0o755)
    files = scan_directory(tmp_path)
    digests = dict(zip([f.abspath for f in files], hash_many([f.abspath for f in files]),
                       strict=True))
    scanned = Manifest.of_scan(files, digests)
    assert scanned == Manifest(Entry(f.path, digests[f.abspath], f.size, f.mode)
                               for f in files)
    assert scanned.to_bytes() == Manifest.from_bytes(scanned.to_bytes()).to_bytes()
    with pytest.raises(InvalidInput, match="invalid digest"):
        Manifest.of_scan(files, {**digests, files[0].abspath: "md5:0"})


def test_digests_in_reads_a_stored_manifest_and_nothing_else() -> None:
    manifest = Manifest([Entry("a", D1, 1), Entry("b", D2, 2), Entry("c", D1, 3)])
    assert Manifest.digests_in(manifest.to_bytes()) == {D1, D2}
    assert Manifest.digests_in(b"not json") == set()
    assert Manifest.digests_in(raw_manifest(entry("a", digest="../x"))) == {"../x"}
    assert Manifest.digests_in(raw_manifest({"path": "a"})) == set()
    assert Manifest.digests_in(b'{"entries": [["a"]]}') == set()


# -- scanning directories -------------------------------------------------------------


def test_scan_records_files_sizes_and_exec_bits(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "a.txt").write_text("aa")
    (tmp_path / "sub" / "deeper" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(tmp_path / "sub" / "deeper" / "run.sh", 0o700)
    (tmp_path / "sub" / "empty").write_bytes(b"")
    files = scan_directory(tmp_path)
    assert [(f.path, f.size, f.mode) for f in files] == [
        ("a.txt", 2, FILE_MODE),
        ("sub/deeper/run.sh", 10, EXEC_MODE),
        ("sub/empty", 0, FILE_MODE),
    ]
    manifest = Manifest.from_directory(tmp_path, hash_many)
    assert manifest.by_path["a.txt"].digest == hash_bytes(b"aa")


def test_scan_follows_symlinks_that_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "link-to-file").symlink_to("real/f")
    (tmp_path / "link-to-dir").symlink_to(tmp_path / "real")
    paths = [f.path for f in scan_directory(tmp_path)]
    assert paths == ["link-to-dir/f", "link-to-file", "real/f"]


@pytest.mark.parametrize("target", ["../outside", "/etc/hostname"])
def test_scan_refuses_symlinks_escaping_the_tree(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside").write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "evil").symlink_to(target)
    with pytest.raises(InvalidInput, match="points outside"):
        scan_directory(root)


def test_scan_refuses_broken_links_and_loops(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to("missing")
    with pytest.raises(InvalidInput, match="broken symlink"):
        scan_directory(tmp_path)
    (tmp_path / "dangling").unlink()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "up").symlink_to("..")
    with pytest.raises(InvalidInput, match="symlink loop"):
        scan_directory(tmp_path)


def test_scan_refuses_special_files_and_unportable_names(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InvalidInput, match="special file"):
        scan_directory(tmp_path)
    (tmp_path / "pipe").unlink()
    (tmp_path / "back\\slash").write_text("x")
    with pytest.raises(InvalidInput, match="backslash"):
        scan_directory(tmp_path)


def test_scan_skips_only_what_ignore_asks_for(tmp_path: Path) -> None:
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "objects" / "x").write_text("x")
    (tmp_path / "keep.txt").write_text("k")
    (tmp_path / "skip.tmp").write_text("s")
    seen: list[tuple[str, bool]] = []

    def ignore(path: str, is_dir: bool) -> bool:
        seen.append((path, is_dir))
        return path == ".git" or path.endswith(".tmp")

    assert [f.path for f in scan_directory(tmp_path, ignore)] == ["keep.txt"]
    assert (".git", True) in seen
    assert ("skip.tmp", False) in seen


def test_scan_of_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidInput, match="not a directory"):
        scan_directory(tmp_path / "f")


def test_diff_reports_added_removed_and_modified() -> None:
    old = Manifest(
        [Entry("same", D1, 1), Entry("gone", D1, 1), Entry("changed", D1, 1), Entry("chmod", D1, 1)]
    )
    new = Manifest(
        [
            Entry("same", D1, 1),
            Entry("new", D2, 1),
            Entry("changed", D2, 1),
            Entry("chmod", D1, 1, EXEC_MODE),
        ]
    )
    assert diff(old, new) == (["new"], ["gone"], ["changed", "chmod"])
    assert diff(new, new) == ([], [], [])
