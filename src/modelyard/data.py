"""Data versioning from Python: the same operations as ``modelyard data …``.

Each function finds the workspace from ``root`` (default: the current directory,
searching upwards), runs one operation and closes it. Paths are relative to the
current directory, as on the command line::

    import modelyard.data as data
    data.init()
    data.add("data/train.csv", "data/images")
    data.remote_add("origin", "s3://bucket/datasets", default=True)
    data.push()
    data.status().to_dict()
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from modelyard.config import Settings
from modelyard.services.data import add as _add
from modelyard.services.data import checkout as _checkout
from modelyard.services.data import diff as _diff
from modelyard.services.data import gc as _gc
from modelyard.services.data import references as _references
from modelyard.services.data import remotes as _remotes
from modelyard.services.data import status as _status
from modelyard.services.data import transfer as _transfer
from modelyard.services.data import unprotect as _unprotect
from modelyard.services.data.add import Added
from modelyard.services.data.checkout import CheckoutReport
from modelyard.services.data.diff import DiffReport
from modelyard.services.data.gc import GcReport
from modelyard.services.data.progress import NULL_METER, Meter
from modelyard.services.data.status import StatusReport
from modelyard.services.data.transfer import TransferReport
from modelyard.services.data.workspace import Remote, Workspace

PathLike = str | os.PathLike[str]

__all__ = [
    "Added", "CheckoutReport", "DiffReport", "GcReport", "Meter", "Remote", "StatusReport",
    "TransferReport", "Workspace", "add", "checkout", "diff", "fetch", "gc", "init",
    "open_workspace", "pull", "push", "remote_add", "remote_list", "remote_modify",
    "remote_remove", "status",
    "unprotect",
]


@contextmanager
def open_workspace(root: PathLike | None = None) -> Iterator[Workspace]:
    """The workspace containing ``root`` (default: the current directory)."""
    with Workspace.find(root or ".") as ws:
        yield ws


def init(root: PathLike | None = None) -> str:
    """Create ``.modelyard/`` at the top of the git working tree; returns that root."""
    with Workspace.init(root or ".") as ws:
        return ws.root


def add(*paths: PathLike, root: PathLike | None = None, meter: Meter = NULL_METER,
        workers: int | None = None) -> list[Added]:
    """Track files or folders: cache their content, write ``PATH.yard``, git-ignore ``PATH``."""
    with open_workspace(root) as ws:
        return _add.add(ws, paths, meter=meter, workers=workers)


def status(*paths: PathLike, root: PathLike | None = None, remote: str | None = None,
           cloud: bool = False) -> StatusReport:
    """Modified, missing, not-in-cache and not-pushed data (``cloud`` asks the remote)."""
    with open_workspace(root) as ws:
        return _status.status(ws, paths, remote=remote, cloud=cloud)


def push(*paths: PathLike, root: PathLike | None = None, remote: str | None = None,
         jobs: int | None = None, meter: Meter = NULL_METER) -> TransferReport:
    """Upload cached objects the remote lacks."""
    with open_workspace(root) as ws:
        return _transfer.push(ws, paths, remote=remote, jobs=jobs, meter=meter)


def fetch(*paths: PathLike, root: PathLike | None = None, remote: str | None = None,
          jobs: int | None = None, meter: Meter = NULL_METER) -> TransferReport:
    """Download into the cache the objects the pointers need."""
    with open_workspace(root) as ws, _status.naming_missing_data(ws, paths, remote):
        return _transfer.fetch(ws, paths, remote=remote, jobs=jobs, meter=meter)


def pull(*paths: PathLike, root: PathLike | None = None, remote: str | None = None,
         jobs: int | None = None, force: bool = False,
         meter: Meter = NULL_METER) -> tuple[TransferReport, CheckoutReport]:
    """``fetch`` then ``checkout``."""
    with open_workspace(root) as ws, _status.naming_missing_data(ws, paths, remote):
        return _transfer.pull(ws, paths, remote=remote, jobs=jobs, force=force, meter=meter)


def checkout(*paths: PathLike, root: PathLike | None = None, force: bool = False,
             jobs: int | None = None, meter: Meter = NULL_METER) -> CheckoutReport:
    """Make the working tree match the pointer files."""
    with open_workspace(root) as ws:
        return _checkout.checkout(ws, paths, force=force, jobs=jobs, meter=meter)


def diff(old: str = "HEAD", new: str | None = None, *,
         root: PathLike | None = None) -> DiffReport:
    """Data added, removed and modified between two revisions (``new``: the working tree)."""
    with open_workspace(root) as ws:
        return _diff.diff(ws, old, new)


def gc(*, root: PathLike | None = None, workspace: bool = False, all_branches: bool = False,
       all_tags: bool = False, all_commits: bool = False, remote: str | None = None,
       only_this_clone: bool = False, dry_run: bool = False,
       grace: timedelta | float = _gc.DEFAULT_GRACE,
       confirm: Callable[[GcReport], bool] | None = None,
       registry_store: str | None = None) -> GcReport:
    """Delete objects nothing references from the cache (or from ``remote``).

    Keeps everything git can reach (branches, tags, stashes, reflogs), the index and the
    working tree, unless narrowed (``workspace``, ``all_branches``, ``all_tags``); never
    deletes objects younger than ``grace`` (a timedelta or seconds). ``confirm(plan)``
    may veto. A remote needs ``only_this_clone=True`` and must not be a registry store
    (``registry_store``, default: this machine's, from ``MODELYARD_*``).
    """
    scope = _references.Scope(workspace=workspace, all_branches=all_branches,
                              all_tags=all_tags, all_commits=all_commits)
    stores = [registry_store or Settings.resolve().store_uri]
    with open_workspace(root) as ws:
        return _gc.gc(ws, scope=scope, remote=remote, only_this_clone=only_this_clone,
                      dry_run=dry_run, grace=grace, confirm=confirm, registry_stores=stores)


def unprotect(*paths: PathLike, root: PathLike | None = None) -> list[str]:
    """Replace checked-out links by writable copies."""
    with open_workspace(root) as ws:
        return _unprotect.unprotect(ws, paths)


def remote_add(name: str, url: str, *, default: bool = False,
               options: Mapping[str, Any] | None = None, local: bool = False,
               root: PathLike | None = None) -> Remote:
    """Add a remote (a folder, ``file://``, ``s3://bucket/prefix``, any fsspec URL);
    ``local`` keeps it in this machine's git-ignored ``.modelyard/config.local``."""
    with open_workspace(root) as ws:
        return _remotes.add_remote(ws, name, url, default=default, options=options,
                                   local=local)


def remote_modify(name: str, option: str, value: Any = None, *, local: bool = False,
                  unset: bool = False, root: PathLike | None = None) -> None:
    """Set or unset a remote's ``url`` or an fsspec option (credentials: ``local=True``)."""
    with open_workspace(root) as ws:
        _remotes.modify_remote(ws, name, option, value, local=local, unset=unset)


def remote_list(*, root: PathLike | None = None) -> list[dict[str, Any]]:
    with open_workspace(root) as ws:
        return _remotes.list_remotes(ws)


def remote_remove(name: str, *, root: PathLike | None = None) -> None:
    with open_workspace(root) as ws:
        _remotes.remove_remote(ws, name)
