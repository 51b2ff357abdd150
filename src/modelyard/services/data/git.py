"""The few git questions data versioning asks, through the ``git`` command itself.

Pointer files are plain files in git, so reading them at any revision is ``git ls-tree``
plus one ``git cat-file --batch`` (one process for all pointers, not one per file).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence

from modelyard.domain.pointer import SUFFIX
from modelyard.errors import InvalidInput, NotFound, StorageUnavailable


def run(root: str | os.PathLike[str], args: Sequence[str], stdin: bytes | None = None) -> bytes:
    """Output of ``git ARGS`` in ``root``; a failing command becomes InvalidInput."""
    try:
        done = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True,
                              check=False)
    except FileNotFoundError:
        raise StorageUnavailable("git is not installed or not on PATH") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise InvalidInput(f"git {' '.join(args[:2])} failed: "
                           f"{message[0] if message else 'exit ' + str(done.returncode)}")
    return done.stdout


def find_root(start: str | os.PathLike[str]) -> str:
    """The top of the git working tree containing ``start``."""
    path = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            raise NotFound(f"{os.path.abspath(start)} is not inside a git working tree",
                           hint="run 'git init' first; Modelyard keeps pointer files in git")
        path = parent


def resolve_commit(root: str, rev: str) -> str:
    """The commit id of ``rev``; InvalidInput naming the revision if git does not know it."""
    try:
        return run(root, ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"]).decode().strip()
    except InvalidInput:
        raise InvalidInput(f"unknown git revision {rev!r}", rev=rev) from None


def pointer_blobs(root: str, commit: str) -> dict[str, str]:
    """Pointer file path (repository-relative, POSIX) → blob id, at ``commit``."""
    out = run(root, ["ls-tree", "-r", "-z", "--full-tree", commit])
    blobs: dict[str, str] = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.decode("utf-8", "surrogateescape").partition("\t")
        kind, blob = meta.split()[1:3]
        if kind == "blob" and _is_pointer(path):
            blobs[path] = blob
    return blobs


def read_blobs(root: str, blobs: Iterable[str]) -> dict[str, bytes]:
    """Contents of many blobs with a single ``git cat-file --batch``."""
    wanted = sorted(set(blobs))
    if not wanted:
        return {}
    out = run(root, ["cat-file", "--batch"], stdin="".join(b + "\n" for b in wanted).encode())
    contents: dict[str, bytes] = {}
    pos = 0
    for blob in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        size = int(header[2])
        contents[blob] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return contents


def history_pointer_blobs(root: str) -> set[str]:
    """Blob ids of every pointer file in every commit git can still reach.

    "Reach" as ``git gc`` means it: from any ref (local and remote-tracking branches, tags,
    ``refs/stash``, other worktrees' HEADs) or any reflog entry (older stashes, reset or
    amended commits). One ``git log`` walk prints, per commit, the pointer blobs that differ
    from each parent; every blob of every commit's tree is new in some commit (or a root), so
    the union is exact without listing each commit's tree (``ls-tree`` per commit was one
    process per commit).
    """
    out = run(root, ["-c", "log.showSignature=false", "log", "--all", "--reflog",
                     "--full-history", "--diff-merges=separate", "--root", "--no-renames",
                     "--no-ext-diff", "--no-textconv", "--raw", "--no-abbrev", "-z",
                     "--format=", "--", f"*{SUFFIX}"])
    blobs: set[str] = set()
    records = iter(out.split(b"\0"))
    for record in records:  # ":old_mode new_mode old_blob new_blob status" NUL path NUL
        meta = record.lstrip(b"\n")
        if not meta.startswith(b":"):
            continue
        path = next(records, b"")
        _old_mode, new_mode, _old, new, _status = meta[1:].decode().split()
        if new_mode.startswith("100") and _is_pointer(path.decode("utf-8", "surrogateescape")):
            blobs.add(new)
    return blobs


def tip_commits(root: str, *, branches: bool, tags: bool) -> list[str]:
    """Commits at the tip of every local and remote-tracking branch, and/or every tag."""
    refs = (["--branches", "--remotes"] if branches else []) + (["--tags"] if tags else [])
    if not refs:
        return []
    return run(root, ["rev-list", "--no-walk", *refs]).decode().split()


def index_pointer_blobs(root: str) -> set[str]:
    """Blob ids of the pointer files in the index (every stage, so a conflict keeps all)."""
    out = run(root, ["ls-files", "-z", "--stage", "--", f"*{SUFFIX}"])
    blobs: set[str] = set()
    for record in out.split(b"\0"):
        meta, _, path = record.decode("utf-8", "surrogateescape").partition("\t")
        if meta and _is_pointer(path):
            blobs.add(meta.split()[1])
    return blobs


def _is_pointer(path: str) -> bool:
    return path.endswith(SUFFIX) and not path.startswith(".modelyard/")


def tracked_pointer_files(root: str) -> list[str]:
    """Pointer files in the working tree, committed or not (git skips ignored data fast)."""
    out = run(root, ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                     f"*{SUFFIX}"])
    paths = {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}
    return sorted(p for p in paths if not p.startswith(".modelyard/"))
