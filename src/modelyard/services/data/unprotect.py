"""``data unprotect``: turn checked-out links into private, writable copies before editing.

Hardlinks and symlinks share their bytes with the cache, which is why checkout leaves
them read-only; editing one in place would corrupt the cache. Unprotecting copies the
bytes out, so the cache is untouched whatever happens to the file afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from modelyard.errors import InvalidInput
from modelyard.services.data.links import is_protected, make_writable_copy
from modelyard.services.data.workspace import Workspace


def unprotect(ws: Workspace, paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Make every linked file under ``paths`` a writable copy; returns the files changed."""
    if not paths:
        raise InvalidInput("nothing to unprotect: give one or more tracked files or folders")
    changed: list[str] = []
    for path in paths:
        rel = ws.relpath(path)
        full = ws.target(rel, rel)
        if not os.path.lexists(full):
            raise InvalidInput(f"{rel} does not exist", hint="run 'modelyard data checkout'",
                               path=rel)
        for file in _files(full):
            if is_protected(file) and _into_cache(ws, file):
                make_writable_copy(file)
                changed.append(ws.relpath(file))
    return changed


def _files(full: str) -> list[str]:
    if not os.path.isdir(full) or os.path.islink(full):
        return [full]
    return [os.path.join(d, name) for d, _dirs, names in os.walk(full) for name in names]


def _into_cache(ws: Workspace, file: str) -> bool:
    """Only links into the cache are copied out: a symlink to anything else (say
    ``/etc/shadow`` in a hostile clone) is not ours to read into the tree."""
    if not os.path.islink(file):
        return True
    real = os.path.realpath(file)
    return any(real.startswith(os.path.realpath(r) + os.sep) for r in ws.link_roots)
