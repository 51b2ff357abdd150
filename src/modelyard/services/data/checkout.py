"""``data checkout``: make the working tree match the pointer files (e.g. after git checkout).

Everything is checked before anything changes: the needed objects are in the cache,
they still hash to their digests (through the state cache, so an untouched object is
not re-read; a cache object edited through a hardlink has a new mtime and is re-hashed),
and no local change that exists nowhere else would be overwritten (unless ``force``).
Then each file is placed atomically with the configured link strategy.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.services.data.links import place
from modelyard.services.data.parallel import run_parallel
from modelyard.services.data.progress import NULL_METER, Meter
from modelyard.services.data.scan import describe, folder_fingerprint
from modelyard.services.data.workspace import Tracked, Workspace
from modelyard.storage.manifest import scan_directory
from modelyard.storage.state_cache import hash_paths_cached


@dataclass(frozen=True)
class _Write:
    digest: str
    target: str
    size: int
    executable: bool
    label: str  # the data path shown in errors


@dataclass
class _Plan:
    tracked: Tracked
    writes: list[_Write] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    replace_dir: bool = False  # a folder stands where a file must go (or the reverse)


@dataclass(frozen=True)
class CheckoutReport:
    restored: list[str]
    unchanged: list[str]
    files_written: int
    files_removed: int
    links: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"restored": self.restored, "unchanged": self.unchanged,
                "files_written": self.files_written, "files_removed": self.files_removed,
                "links": dict(self.links)}


def checkout(ws: Workspace, paths: Sequence[str | os.PathLike[str]] = (), *,
             force: bool = False, jobs: int | None = None,
             meter: Meter = NULL_METER) -> CheckoutReport:
    """Restore the selected data (all by default) to what the pointer files say."""
    plans = [_plan(ws, t, force) for t in ws.tracked(paths)]
    writes = [w for p in plans for w in p.writes]
    _check_cache(ws, writes)
    meter.start("checking out", len(writes), sum(w.size for w in writes))
    used: Counter[str] = Counter()
    for plan in plans:
        target = ws.abspath(plan.tracked.data_path)
        if plan.replace_dir and os.path.lexists(target):
            _remove_path(target)
        for path in plan.deletes:
            os.unlink(path)

    def write(w: _Write) -> None:
        used[place(ws.cache.local_path(w.digest), w.target, ws.config.links, w.executable)] += 1
        meter.advance(w.size)
        meter.file_done()

    run_parallel(write, writes, jobs)
    ws.state.put_many((w.target, os.stat(w.target), w.digest) for w in writes)
    changed = [p for p in plans if p.writes or p.deletes or p.replace_dir]
    for plan in changed:
        if plan.tracked.pointer.kind == "dir":
            target = ws.abspath(plan.tracked.data_path)
            _prune_empty_dirs(target)
            ws.dirs.put(target, folder_fingerprint(target, ws.link_roots), plan.tracked.pointer)
    return CheckoutReport(
        restored=[p.tracked.data_path for p in changed],
        unchanged=[p.tracked.data_path for p in plans if p not in changed],
        files_written=len(writes), files_removed=sum(len(p.deletes) for p in plans),
        links=dict(used),
    )


def _plan(ws: Workspace, tracked: Tracked, force: bool) -> _Plan:
    plan = _Plan(tracked)
    target = ws.abspath(tracked.data_path)
    p = tracked.pointer
    if p.kind == "file":
        if os.path.isdir(target) and not os.path.islink(target):
            inside = [_strip_mode(v) for v in _dir_digests(ws, target).values()]
            _refuse_unless_safe(ws, tracked, inside, force)
            plan.replace_dir = True
        elif os.path.lexists(target):
            now = _digests(ws, [target]).get(target)
            if now == p.digest:
                return plan
            _refuse_unless_safe(ws, tracked, [now], force)
        plan.writes.append(_Write(p.digest, target, p.size, False, tracked.data_path))
        return plan
    if os.path.isdir(target) and describe(target, ws.state, ws.link_roots,
                                          ws.dirs).digest == p.digest:
        return plan  # unchanged (usually known from the folder's fingerprint alone)
    try:
        manifest = ws.cache.get_manifest(p.digest)
    except NotFound:
        raise NotFound(f"the content of {tracked.data_path} is not in the cache",
                       hint="run 'modelyard data pull' to download it",
                       path=tracked.data_path) from None
    current: dict[str, str | None] = {}
    if os.path.isdir(target) and not os.path.islink(target):
        current = dict(_dir_digests(ws, target))
    elif os.path.lexists(target):
        _refuse_unless_safe(ws, tracked, _digests(ws, [target]).values(), force)
        plan.replace_dir = True
    wanted = manifest.by_path
    extra = [rel for rel in current if rel not in wanted]
    changed = [e for e in manifest.entries if current.get(e.path) != _with_mode(e.digest, e.mode)]
    _refuse_unless_safe(ws, tracked, [_strip_mode(current[r]) for r in extra], force)
    _refuse_unless_safe(ws, tracked, [_strip_mode(current[e.path]) for e in changed
                                      if e.path in current], force)
    plan.deletes = [os.path.join(target, *rel.split("/")) for rel in extra]
    plan.writes = [_Write(e.digest, os.path.join(target, *e.path.split("/")), e.size,
                          e.executable, f"{tracked.data_path}/{e.path}") for e in changed]
    return plan


def _with_mode(digest: str, mode: int) -> str:
    return f"{digest}:{mode:o}"


def _strip_mode(value: str | None) -> str | None:
    return value.rsplit(":", 1)[0] if value else None


def _dir_digests(ws: Workspace, target: str) -> dict[str, str | None]:
    """Relative path → "digest:mode" of every file under ``target`` (via the state cache)."""
    files = scan_directory(target, link_roots=ws.link_roots)
    digests = _digests(ws, [f.abspath for f in files])
    return {f.path: _with_mode(digests[f.abspath], f.mode) for f in files}


def _digests(ws: Workspace, paths: list[str]) -> dict[str, str]:
    return hash_paths_cached(paths, ws.state)


def _refuse_unless_safe(ws: Workspace, tracked: Tracked, digests: Any, force: bool) -> None:
    """Local content that is in no cache would be lost: refuse unless ``force``."""
    at_risk = {d for d in digests if d} - ws.cache.exists_many(d for d in digests if d)
    if at_risk and not force:
        raise InvalidInput(
            f"{tracked.data_path} has local changes that are not in the cache",
            hint=f"keep them with 'modelyard data add {tracked.data_path}', or discard them "
                 "with 'modelyard data checkout --force'",
            path=tracked.data_path,
        )


def _check_cache(ws: Workspace, writes: list[_Write]) -> None:
    """Every object to place is cached and intact; IntegrityError names the data file."""
    first: dict[str, _Write] = {}
    for w in writes:
        first.setdefault(w.digest, w)
    missing = set(first) - ws.cache.exists_many(first)
    if missing:
        label = first[min(missing)].label
        raise NotFound(f"{len(missing)} object(s) needed by {label} are not in the cache",
                       hint="run 'modelyard data pull' to download them", path=label)
    paths = {ws.cache.local_path(d): d for d in first}
    actual = hash_paths_cached(list(paths), ws.state)
    for path, digest in paths.items():
        if actual[path] != digest:
            raise IntegrityError(
                f"the cache copy of {first[digest].label} is corrupted "
                f"({digest} hashes to {actual[path]})",
                hint=f"delete {path} and run 'modelyard data pull' to fetch a good copy",
                path=first[digest].label, digest=digest,
            )


def _remove_path(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _prune_empty_dirs(root: str) -> None:
    for directory, _dirs, _files in os.walk(root, topdown=False):
        if directory != root and not os.listdir(directory):
            os.rmdir(directory)
