"""``data checkout``: make the working tree match the pointer files (e.g. after git checkout).

Everything is checked before anything changes: every data path and manifest entry is a
safe path inside the tree (``domain.workpaths``, ``Workspace.target``), the needed
objects are in the cache, they still hash to their digests (through the state cache, so
an untouched object is not re-read), and no local change that exists nowhere else would
be overwritten (unless ``force``). Then each file is placed atomically with the
configured link strategy.

What ``force`` may delete is the tracked output it replaces, nothing more: the file at
the data path, or, for a folder, the files below it that its manifest does not list.
Nothing named ``.git``/``.modelyard`` (or a variant) is ever scanned, replaced or
deleted, no write or delete goes through a symlinked folder, and a whole folder is
removed only when a file pointer replaces it and it holds nothing of that kind.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from modelyard.domain import workpaths
from modelyard.domain.codec import Record
from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.services.data.links import Placer
from modelyard.services.data.progress import NULL_METER, Meter
from modelyard.services.data.scan import describe, folder_fingerprint, scan_output
from modelyard.services.data.workspace import Tracked, Workspace
from modelyard.storage.index.state_cache import hash_paths_cached
from modelyard.storage.parallel import run_parallel


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
    target: str
    writes: list[_Write] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    remove_target: bool = False  # something of the wrong kind stands at the data path


@dataclass(frozen=True)
class CheckoutReport(Record):
    restored: list[str]
    unchanged: list[str]
    files_written: int
    files_removed: int
    links: dict[str, int]


def checkout(ws: Workspace, paths: Sequence[str | os.PathLike[str]] = (), *,
             force: bool = False, jobs: int | None = None,
             meter: Meter = NULL_METER) -> CheckoutReport:
    """Restore the selected data (all by default) to what the pointer files say."""
    tracked = ws.tracked(paths)
    _refuse_nested(tracked)
    plans = [_plan(ws, t, force) for t in tracked]
    writes = [w for p in plans for w in p.writes]
    _check_cache(ws, writes)
    meter.start("checking out", len(writes), sum(w.size for w in writes))
    for plan in plans:
        if plan.remove_target:
            _remove_output(plan.target)
        for path in plan.deletes:
            os.unlink(path)

    placer = Placer(ws.config.links)

    def write(w: _Write) -> str:
        strategy = placer.place(ws.cache.local_path(w.digest), w.target, w.executable)
        meter.advance(w.size)
        meter.file_done()
        return strategy

    used = Counter(run_parallel(write, writes, jobs))
    ws.state.put_many((w.target, os.stat(w.target), w.digest) for w in writes)
    changed = [p for p in plans if p.writes or p.deletes or p.remove_target]
    for plan in changed:
        if plan.tracked.pointer.kind == "dir":
            os.makedirs(plan.target, exist_ok=True)  # an empty folder is still the output
            _prune_empty_dirs(plan.target)
            ws.dirs.put(plan.target, folder_fingerprint(plan.target, ws.link_roots),
                        plan.tracked.pointer)
    return CheckoutReport(
        restored=[p.tracked.data_path for p in changed],
        unchanged=[p.tracked.data_path for p in plans if p not in changed],
        files_written=len(writes), files_removed=sum(len(p.deletes) for p in plans),
        links=dict(used),
    )


def _refuse_nested(tracked: Sequence[Tracked]) -> None:
    """Two pointers for one path, or one inside another's folder, would overwrite each
    other's files: refuse before anything is touched."""
    by_path = {t.data_path: t for t in tracked}
    for inner in tracked:
        parts = inner.data_path.split("/")
        owners = ("/".join(parts[:i]) for i in range(1, len(parts)))
        outer = next((by_path[o] for o in owners if o in by_path), None)
        if outer is not None:
            raise InvalidInput(
                f"{inner.pointer_path} tracks data inside {outer.data_path}, which "
                f"{outer.pointer_path} already tracks",
                hint=f"delete one of the two pointer files ({inner.pointer_path} or "
                     f"{outer.pointer_path})", path=inner.pointer_path)


def _plan(ws: Workspace, tracked: Tracked, force: bool) -> _Plan:
    plan = _Plan(tracked, ws.target(tracked.data_path, tracked.pointer_path))
    if tracked.pointer.kind == "file":
        _plan_file(ws, plan, force)
    else:
        _plan_dir(ws, plan, force)
    return plan


def _plan_file(ws: Workspace, plan: _Plan, force: bool) -> None:
    tracked, target, p = plan.tracked, plan.target, plan.tracked.pointer
    if _is_real_dir(target):
        files = scan_output(target, tracked.pointer_path, ws.link_roots, whole=True)
        _refuse_unless_safe(ws, tracked, _digests(ws, [f.abspath for f in files]).values(),
                            force)
        plan.remove_target = True
    elif _is_folder_link(target):
        _refuse_folder_link(tracked, force)
        plan.remove_target = True
    elif os.path.exists(target):
        now = _digests(ws, [target])[target]
        if now == p.digest:
            return
        _refuse_unless_safe(ws, tracked, [now], force)
    # a dangling symlink holds nothing: the placement replaces the link itself
    plan.writes.append(_Write(p.digest, target, p.size, False, tracked.data_path))


def _plan_dir(ws: Workspace, plan: _Plan, force: bool) -> None:
    tracked, target, p = plan.tracked, plan.target, plan.tracked.pointer
    if _is_real_dir(target) and describe(target, ws.state, ws.link_roots,
                                         ws.dirs).digest == p.digest:
        return  # unchanged (usually known from the folder's fingerprint alone)
    try:
        manifest = ws.cache.get_manifest(p.digest)
    except NotFound:
        raise NotFound(f"the content of {tracked.data_path} is not in the cache",
                       hint="run 'modelyard data pull' to download it",
                       path=tracked.data_path) from None
    for entry in manifest.entries:  # a manifest from a cache or remote is input too
        workpaths.check_data_path(f"{tracked.data_path}/{entry.path}", tracked.pointer_path)
    current: dict[str, str] = {}
    if _is_real_dir(target):
        files = scan_output(target, tracked.pointer_path, ws.link_roots)
        digests = _digests(ws, [f.abspath for f in files])
        current = {f.path: _with_mode(digests[f.abspath], f.mode) for f in files}
        _refuse_folder_links_below(target, manifest.by_path, tracked)
    elif _is_folder_link(target):
        _refuse_folder_link(tracked, force)
        plan.remove_target = True
    elif os.path.lexists(target):
        if os.path.exists(target):
            _refuse_unless_safe(ws, tracked, _digests(ws, [target]).values(), force)
        plan.remove_target = True
    wanted = manifest.by_path
    extra = [rel for rel in current if rel not in wanted]
    changed = [e for e in manifest.entries if current.get(e.path) != _with_mode(e.digest, e.mode)]
    _refuse_unless_safe(ws, tracked, [_strip_mode(current[r]) for r in extra], force)
    _refuse_unless_safe(ws, tracked, [_strip_mode(current[e.path]) for e in changed
                                      if e.path in current], force)
    plan.deletes = [os.path.join(target, *rel.split("/")) for rel in extra]
    plan.writes = [_Write(e.digest, os.path.join(target, *e.path.split("/")), e.size,
                          e.executable, f"{tracked.data_path}/{e.path}") for e in changed]


def _is_real_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def _is_folder_link(path: str) -> bool:
    return os.path.islink(path) and os.path.isdir(path)


def _refuse_folder_link(tracked: Tracked, force: bool) -> None:
    """A symlinked folder at the data path: never write through it; ``force`` replaces
    the link itself (what it points to is left alone)."""
    if not force:
        raise InvalidInput(
            f"{tracked.data_path} is a symlink to a folder; checkout does not write through it",
            hint="remove the link, or replace it with 'modelyard data checkout --force' "
                 "(the folder it points to is left alone)", path=tracked.data_path)


def _refuse_folder_links_below(target: str, wanted: Iterable[str], tracked: Tracked) -> None:
    """No file of the manifest may be written through a symlinked folder below ``target``
    (it could lead into the cache, ``.git`` or another output)."""
    folders = {rel.rsplit("/", 1)[0] for rel in wanted if "/" in rel}
    prefixes = {"/".join(f.split("/")[: i + 1]) for f in folders
                for i in range(f.count("/") + 1)}
    for rel in sorted(prefixes):
        if os.path.islink(os.path.join(target, *rel.split("/"))):
            raise InvalidInput(
                f"{tracked.data_path}/{rel} is a symlink; checkout does not write through "
                "symlinked folders",
                hint=f"replace {tracked.data_path}/{rel} by a real folder and run checkout "
                     "again", path=tracked.data_path)


def _with_mode(digest: str, mode: int) -> str:
    return f"{digest}:{mode:o}"


def _strip_mode(value: str | None) -> str | None:
    return value.rsplit(":", 1)[0] if value else None


def _digests(ws: Workspace, paths: list[str]) -> dict[str, str]:
    return hash_paths_cached(paths, ws.state)


def _refuse_unless_safe(ws: Workspace, tracked: Tracked, digests: Iterable[str | None],
                        force: bool) -> None:
    """Local content that is in no cache would be lost: refuse unless ``force``."""
    found = {d for d in digests if d}
    at_risk = found - ws.cache.exists_many(found)
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
                hint="run 'modelyard data pull': it replaces damaged cache objects with "
                     "verified copies from the remote",
                path=first[digest].label, digest=digest,
            )


def _remove_output(path: str) -> None:
    """Remove what stands at a data path (planning vetted it: nothing reserved inside)."""
    if _is_real_dir(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _prune_empty_dirs(root: str) -> None:
    for directory, _dirs, _files in os.walk(root, topdown=False):
        if (directory != root and not os.listdir(directory)
                and not workpaths.is_reserved(os.path.basename(directory))):
            os.rmdir(directory)
