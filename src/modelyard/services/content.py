"""The content plane's side of a store: what the caller's files are put into and read from.

Metadata operations never see a path; the content plane (``services/files.py``) moves the
caller's bytes through a ``ContentStore`` by digest and hands them ``StoredContent``.
Embedded, that store is the registry's own object store (``LocalContent``: one pass that
hashes and writes, exactly as fast as before the split); a remote client supplies one that
asks the server which digests it lacks and uploads only those.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from modelyard.domain.content import ContentKind
from modelyard.services.data.progress import BytesMeter
from modelyard.services.data.transfer import Objects, copy_objects
from modelyard.storage.content.objects import ObjectStore, StoredTree
from modelyard.storage.index.state_cache import StateCache

Progress = Callable[[int], None]


class ContentStore(Protocol):
    def put_tree(self, path: str | os.PathLike[str], progress: Progress | None = None, *,
                 cache: StateCache | None = None) -> StoredTree:
        """Store a file or a directory (its files, then its manifest), verified."""
        ...

    def describe(self, path: str | os.PathLike[str]) -> StoredTree | None:
        """What ``put_tree`` would store for ``path``, without storing it, when that is
        cheap and the registry may well hold it already (so a use case can try its
        metadata call first); None when storing is as cheap as describing."""
        ...

    def put_cached(self, cache: ObjectStore, objects: Objects,
                   progress: Progress | None = None) -> None:
        """Store objects a local data cache holds (a ``.yard`` pointer's data)."""
        ...

    def materialize(self, digest: str, kind: ContentKind, dest_dir: str | os.PathLike[str],
                    filename: str | None = None, progress: Progress | None = None) -> str:
        """Write a stored file or directory under ``dest_dir``, every byte verified."""
        ...


class LocalContent:
    """The embedded content plane: the registry's object store, in this process."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def put_tree(self, path: str | os.PathLike[str], progress: Progress | None = None, *,
                 cache: StateCache | None = None) -> StoredTree:
        return self.store.put_tree(path, progress=progress, cache=cache)

    def describe(self, path: str | os.PathLike[str]) -> StoredTree | None:
        """None: the local store hashes while it writes, and has nothing to skip."""
        return None

    def put_cached(self, cache: ObjectStore, objects: Objects,
                   progress: Progress | None = None) -> None:
        copy_objects(cache, self.store, objects, meter=BytesMeter(progress))

    def materialize(self, digest: str, kind: ContentKind, dest_dir: str | os.PathLike[str],
                    filename: str | None = None, progress: Progress | None = None) -> str:
        return self.store.materialize(digest, kind, dest_dir, filename=filename,
                                      progress=progress)
