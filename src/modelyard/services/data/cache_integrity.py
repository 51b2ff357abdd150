"""Which cache objects no longer hash to their digest, without re-reading intact ones.

A cache object can change after it was stored: a file checked out as a hardlink (when
``cache.link`` asks for them) shares its inode with the object, so ``>`` on it rewrites
the object. Every object is hashed once through the state cache keyed on its own path,
inode, size and mtime, and again only when that stat changes, which is exactly what an
in-place write does.

So that a no-op ``status`` over 70,000 objects costs one ``stat`` each and no per-object
lookups, each pointer's objects (its file, or its manifest and every file the manifest
lists) are remembered in ``state.db`` with a fingerprint of their stats taken when all
of them were last found intact, as ``dir_state`` does for working-tree folders: a
matching fingerprint vouches for all of them; any changed stat falls back to the state
cache, which re-hashes only the changed objects.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from modelyard.errors import IntegrityError, InvalidInput
from modelyard.services.data.workspace import Tracked, Workspace
from modelyard.storage.content.hashing import DIGEST_PREFIX, hash_bytes
from modelyard.storage.index.sqlite_file import connect
from modelyard.storage.index.state_cache import hash_paths_cached

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_check (
    digest      TEXT PRIMARY KEY,
    objects     BLOB NOT NULL,
    fingerprint TEXT NOT NULL
) WITHOUT ROWID
"""


@dataclass
class Damage:
    outputs: list[str] = field(default_factory=list)
    """Data paths whose cached content is damaged."""
    objects: set[str] = field(default_factory=set)
    """The damaged objects' digests."""


def damaged(ws: Workspace, digests: Iterable[str]) -> set[str]:
    """The subset of ``digests`` present in the cache whose bytes no longer match."""
    present = ws.cache.exists_many(digests)
    paths = {ws.cache.local_path(d): d for d in present}
    try:
        actual = hash_paths_cached(list(paths), ws.state)
    except InvalidInput:  # an object vanished meanwhile (gc): check the rest one by one
        actual = {}
        for path in paths:
            try:
                actual.update(hash_paths_cached([path], ws.state))
            except InvalidInput:
                continue
    return {d for path, d in paths.items() if path in actual and actual[path] != d}


def check(ws: Workspace, tracked: Sequence[Tracked]) -> Damage:
    """Damaged cache content of ``tracked``: a file's object, or a folder's manifest or
    any file it lists. Content not in the cache at all is not damage (``status`` calls
    it ``not_in_cache``)."""
    db = connect(os.path.join(ws.dir, "state.db"), _SCHEMA)
    try:
        known = _rows(db, {t.pointer.digest for t in tracked})
        damage = Damage()
        seen: dict[str, set[str]] = {}
        for item in tracked:
            digest = item.pointer.digest
            if digest not in seen:
                seen[digest] = _check_one(ws, db, item, known.get(digest))
            if seen[digest]:
                damage.outputs.append(item.data_path)
                damage.objects |= seen[digest]
        damage.outputs.sort()
        return damage
    finally:
        db.close()


def _check_one(ws: Workspace, db: sqlite3.Connection, item: Tracked,
               row: tuple[bytes, str] | None) -> set[str]:
    digest = item.pointer.digest
    if row is not None:
        objects = _unpack(row[0])
        stats = _stats(ws, objects)
        if stats is not None and _fingerprint(stats) == row[1]:
            return set()
    if not ws.cache.exists(digest):
        return set()
    objects = [digest]
    if item.pointer.kind == "dir":
        try:
            manifest = ws.cache.get_manifest(digest)
        except IntegrityError:
            return {digest}
        except InvalidInput:
            return set()  # intact bytes that are no manifest: checkout says so
        objects += sorted({e.digest for e in manifest.entries} - {digest})
    stats = _stats(ws, objects)  # taken before hashing: a later write changes them
    bad = damaged(ws, objects)
    if not bad and stats is not None:
        db.execute("INSERT OR REPLACE INTO cache_check (digest, objects, fingerprint)"
                   " VALUES (?, ?, ?)", (digest, _pack(objects), _fingerprint(stats)))
    return bad


def _rows(db: sqlite3.Connection, digests: set[str]) -> dict[str, tuple[bytes, str]]:
    wanted = sorted(digests)
    found: dict[str, tuple[bytes, str]] = {}
    for i in range(0, len(wanted), 500):
        batch = wanted[i : i + 500]
        rows = db.execute("SELECT digest, objects, fingerprint FROM cache_check WHERE digest"
                          f" IN ({','.join('?' * len(batch))})", batch)
        found.update((d, (bytes(o), str(f))) for d, o, f in rows)
    return found


def _stats(ws: Workspace, objects: list[str]) -> list[os.stat_result] | None:
    """Stats of the objects, or None if one is missing (then nothing is vouched for)."""
    try:
        return [os.stat(ws.cache.local_path(d)) for d in objects]
    except (FileNotFoundError, NotADirectoryError):
        return None


def _fingerprint(stats: list[os.stat_result]) -> str:
    lines = "\n".join(f"{s.st_ino}\0{s.st_size}\0{s.st_mtime_ns}" for s in stats)
    return hash_bytes(lines.encode())


def _pack(objects: list[str]) -> bytes:
    return b"".join(bytes.fromhex(d[len(DIGEST_PREFIX):]) for d in objects)


def _unpack(blob: bytes) -> list[str]:
    return [DIGEST_PREFIX + blob[i : i + 32].hex() for i in range(0, len(blob), 32)]
