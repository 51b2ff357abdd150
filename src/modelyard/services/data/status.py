"""``data status``: what differs between the working tree, the cache and the remote.

No network by default: "not pushed" comes from the local record of what push and fetch
saw on the default remote (``cloud=True`` asks the remote itself). Hashing goes through
the state cache and folder fingerprints, so an unchanged tree costs one scan; cache
objects are checked the same way (``cache_integrity``), re-hashed only when their own
stat changed, so a cache object rewritten through a hardlink is reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from modelyard.domain.codec import Record
from modelyard.errors import IntegrityError, NotFound
from modelyard.services.data import cache_integrity
from modelyard.services.data.remotes import get_remote, open_remote
from modelyard.services.data.scan import describe
from modelyard.services.data.workspace import Tracked, Workspace
from modelyard.storage.content.objects import ObjectStore


@dataclass
class StatusReport(Record):
    tracked: int = 0
    modified: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    not_in_cache: list[str] = field(default_factory=list)
    corrupted_in_cache: list[str] = field(default_factory=list)
    not_pushed: list[str] = field(default_factory=list)
    remote: str | None = None
    computed = ("clean",)

    @property
    def clean(self) -> bool:
        return not (self.modified or self.missing or self.not_in_cache
                    or self.corrupted_in_cache or self.not_pushed)


def status(ws: Workspace, paths: Sequence[str | os.PathLike[str]] = (), *,
           remote: str | None = None, cloud: bool = False) -> StatusReport:
    """Classify every selected pointer (all by default).

    A folder counts as cached (or pushed) when its manifest is: manifests are written
    after all of their files, by add, fetch and push alike, and gc keeps the files of
    every manifest it keeps.
    """
    tracked = ws.tracked(paths)
    report = StatusReport(tracked=len(tracked))
    for item in tracked:
        full = ws.target(item.data_path, item.pointer_path)
        if not os.path.lexists(full):
            report.missing.append(item.data_path)
        elif describe(full, ws.state, ws.link_roots, ws.dirs).digest != item.pointer.digest:
            report.modified.append(item.data_path)
    cached = ws.cache.exists_many(t.pointer.digest for t in tracked)
    report.not_in_cache = [t.data_path for t in tracked if t.pointer.digest not in cached]
    report.corrupted_in_cache = cache_integrity.check(ws, tracked).outputs
    if remote is not None or ws.default_remote is not None:
        chosen = get_remote(ws, remote)
        report.remote = chosen.name
        store = open_remote(ws, chosen)
        known = ws.remote_index.known(store.url)
        if cloud:
            found = store.exists_many({t.pointer.digest for t in tracked} - known)
            ws.remote_index.add(store.url, found)
            known |= found
        report.not_pushed = [t.data_path for t in tracked if t.pointer.digest not in known]
    return report


def data_holding(ws: Workspace, digest: str, tracked: Sequence[Tracked],
                 source: ObjectStore | None = None) -> list[str]:
    """The data paths whose content is object ``digest``: a tracked file, or files inside a
    tracked folder (its manifest read from the cache, else from ``source``)."""
    found = []
    for item in tracked:
        if item.pointer.digest == digest:
            found.append(item.data_path)
        elif item.pointer.kind == "dir":
            for store in (ws.cache, source):
                with suppress(NotFound, IntegrityError):
                    if store is not None:
                        manifest = store.get_manifest(item.pointer.digest)
                        found += [f"{item.data_path}/{e.path}" for e in manifest.entries
                                  if e.digest == digest]
                        break
    return found


@contextmanager
def naming_missing_data(ws: Workspace, paths: Sequence[str | os.PathLike[str]],
                        remote: str | None) -> Iterator[None]:
    """Turn "object blake3:… is not in the store" into the data path(s) that need it."""
    try:
        yield
    except NotFound as exc:
        digest = exc.details.get("digest")
        if not isinstance(digest, str) or "path" in exc.details:
            raise
        chosen = get_remote(ws, remote)
        names = data_holding(ws, digest, ws.tracked(paths), open_remote(ws, chosen))
        if not names:
            raise
        more = f" (and {len(names) - 1} more file(s) with the same content)" if names[1:] else ""
        raise NotFound(f"{names[0]}{more} is missing from remote {chosen.name}: {exc.message}",
                       hint="push it from a clone that has it ('modelyard data push'), or "
                            "check that the remote is the right one ('modelyard data remote "
                            "list')", digest=digest, path=names[0]) from None
