"""Refuse to garbage-collect a remote that is, contains or is inside a registry's store.

A registry store has the data layout exactly, but what it must keep is recorded in the
registry database, which gc cannot see: collecting it as a data remote deletes registered
model and dataset versions. Three signs, any one enough:
- ``REGISTRY_MARKER`` at the store's root (written before a registry's first object), found
  at the remote's root, at one of its ancestors, or in a non-object folder below it;
- the embedded layout: an ``objects/`` folder beside a ``registry.db``;
- the registry store this machine is configured with (``MODELYARD_STORE_URI`` / ``--store``
  / ``$MODELYARD_HOME/objects``), compared by location.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable

from modelyard.errors import InvalidInput, ModelyardError
from modelyard.storage.content.objects import REGISTRY_MARKER, ObjectStore

_OBJECT_DIR = re.compile(r"[0-9a-f]{2}")
_SEARCH_DEPTH = 3  # folders below the remote's root searched for a registry's marker


def refuse_registry_store(store: ObjectStore, configured: Iterable[str]) -> None:
    """InvalidInput if ``store`` overlaps a registry store; otherwise nothing."""
    reason = _configured_overlap(store, configured) or _marker_or_layout(store)
    if reason:
        raise InvalidInput(
            f"refusing to garbage-collect {store.url}: {reason}; registered model and "
            "dataset versions live there and are referenced from the registry database, "
            "not from git",
            hint="give data versioning its own remote (a folder or prefix of its own); "
            "never point a data remote at a registry store",
            url=store.url)


def _location(store: ObjectStore) -> tuple[str, str]:
    protocol = store.fs.protocol
    name = "file" if store.is_local else (protocol if isinstance(protocol, str) else protocol[0])
    root = os.path.realpath(store.root) if store.is_local else store.root.strip("/")
    return name, root


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def _configured_overlap(store: ObjectStore, configured: Iterable[str]) -> str | None:
    kind, root = _location(store)
    for url in configured:
        try:
            other_kind, other_root = _location(ObjectStore(url))
        except ModelyardError:  # a URL this machine cannot open cannot be compared
            continue
        if kind == other_kind and _nested(root, other_root):
            return f"it overlaps this machine's registry store {url}"
    return None


def _marker_or_layout(store: ObjectStore) -> str | None:
    root = store.root
    join = os.path.join if store.is_local else posixpath.join
    for folder in _ancestors(store):
        if _exists(store, join(folder, REGISTRY_MARKER)):
            return f"{folder} is a registry store (it holds {REGISTRY_MARKER})"
        if store.is_local and os.path.basename(folder) == "objects" and os.path.isfile(
                os.path.join(os.path.dirname(folder), "registry.db")):
            return f"{folder} is an embedded registry's store (registry.db beside it)"
    if store.is_local and os.path.isfile(os.path.join(root, "registry.db")):
        return f"{root} holds an embedded registry (registry.db)"
    level = [root]
    for _ in range(_SEARCH_DEPTH):
        below: list[str] = []
        for folder in level:
            for entry in _listing(store, folder):
                name = posixpath.basename(str(entry["name"]).rstrip("/"))
                if entry.get("type") == "directory" and not _OBJECT_DIR.fullmatch(name):
                    below.append(str(entry["name"]).rstrip("/"))
                elif name == REGISTRY_MARKER and folder != root:
                    return f"it contains the registry store {folder}"
        level = below
    return None


def _ancestors(store: ObjectStore) -> list[str]:
    """The store's root and every folder above it (up to ``/`` or the bucket)."""
    dirname = os.path.dirname if store.is_local else posixpath.dirname
    found = [store.root]
    while (parent := dirname(found[-1])) not in ("", found[-1]):
        found.append(parent)
    return found


def _exists(store: ObjectStore, path: str) -> bool:
    if store.is_local:
        return os.path.isfile(path)
    try:
        return bool(store.fs.exists(path))
    except OSError:  # an ancestor we may not read (e.g. another bucket)
        return False


def _listing(store: ObjectStore, folder: str) -> list[dict[str, object]]:
    try:
        if store.is_local:
            return list(store.fs.ls(folder, detail=True))
        return list(store.fs.ls(folder, detail=True, refresh=True))
    except OSError:  # missing, not a folder, or not ours to read: nothing found there
        return []
