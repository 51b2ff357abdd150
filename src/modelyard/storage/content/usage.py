"""What a store holds against what it would hold without dedup: ``storage stats``.

Logical bytes count every stored file at its full size (a chunked file at its whole
size, not its chunks); stored bytes are what the objects really take (chunks once,
lists, whole objects). ``added_bytes`` is what one artifact costs beyond others: the
stored bytes of the objects it needs that none of them needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any, Literal

from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.storage.content.chunked import lists_among
from modelyard.storage.content.objects import ObjectStore


@dataclass(frozen=True, slots=True)
class StoreStats:
    store: str
    objects: int
    chunked_files: int
    chunks: int
    logical_bytes: int
    stored_bytes: int

    @property
    def ratio(self) -> float:
        """Logical over stored bytes: 10.0 means dedup stores a tenth of the content."""
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "saved_bytes": self.logical_bytes - self.stored_bytes,
                "ratio": round(self.ratio, 3)}


def store_stats(store: ObjectStore) -> StoreStats:
    """Count every object once (one listing, and a read of each possible chunk list)."""
    sizes = store.stored_sizes(list(store.iter_digests()))
    lists = lists_among(store, dict.fromkeys(sizes))
    chunks = {c for listed in lists.values() for c, _ in listed.chunks}
    logical = sum(listed.size for listed in lists.values()) + sum(
        n for d, n in sizes.items() if d not in lists and d not in chunks)
    return StoreStats(store.url, len(sizes), len(lists), len(chunks & set(sizes)), logical,
                      sum(sizes.values()))


def objects_of(store: ObjectStore, digest: str, kind: Literal["file", "dir"]) -> set[str]:
    """Every object an artifact needs: its own, a folder's files, and their chunks."""
    needed = {digest}
    if kind == "dir":
        with suppress(NotFound, IntegrityError, InvalidInput):
            needed |= {e.digest for e in store.get_manifest(digest).entries}
    for listed in lists_among(store, dict.fromkeys(needed)).values():
        needed |= {c for c, _ in listed.chunks}
    return needed


def added_bytes(store: ObjectStore, artifact: tuple[str, Literal["file", "dir"]],
                before: Iterable[tuple[str, Literal["file", "dir"]]]) -> int:
    """Stored bytes ``artifact`` needs that none of ``before`` needs (what it added)."""
    mine = objects_of(store, *artifact)
    for other in before:
        mine -= objects_of(store, *other)
    return sum(store.stored_sizes(mine).values())
