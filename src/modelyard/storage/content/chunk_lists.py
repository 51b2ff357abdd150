"""The chunk-list object: how a chunked file is found by its whole-file digest.

A chunked file's address is unchanged (the BLAKE3 of its whole content); the object at
that address is this small document instead of the bytes::

    modelyard-chunk-list 1\\n
    {"digest": "blake3:<whole file>", "size": N, "chunks": [["<hex>", size], ...]}

Its own bytes never hash to the address it is stored under (the document names that
digest, a fixed point no hash has), and it names that address, so a document is a chunk
list exactly when it parses and names the digest it is stored under: a user's file that
happens to be a chunk list of something else stays an ordinary object. Chunks are
ordinary objects under their own digests, so every store, old or new, needs no migration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from modelyard.errors import InvalidInput
from modelyard.storage.content.chunking import Cut
from modelyard.storage.content.hashing import format_digest, parse_digest

MAGIC = b"modelyard-chunk-list 1\n"
MAX_DOCUMENT = 256 * 1024 * 1024  # ~3 M chunks: a 3 TiB file at the default chunk size


@dataclass(frozen=True, slots=True)
class ChunkList:
    """A file ``digest`` of ``size`` bytes, as its chunks in order."""

    digest: str
    size: int
    chunks: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, digest: str, cuts: list[Cut]) -> ChunkList:
        return cls(digest, sum(c.size for c in cuts), tuple((c.digest, c.size) for c in cuts))

    def to_bytes(self) -> bytes:
        body = {"digest": self.digest, "size": self.size,
                "chunks": [[parse_digest(d), n] for d, n in self.chunks]}
        return MAGIC + json.dumps(body, separators=(",", ":")).encode()

    def ranges(self) -> Iterator[tuple[int, str, int]]:
        """(offset, digest, size) of each chunk."""
        offset = 0
        for digest, size in self.chunks:
            yield offset, digest, size
            offset += size

    def sizes(self) -> dict[str, int]:
        """Each distinct chunk's size."""
        return dict(self.chunks)


def parse(data: bytes, address: str) -> ChunkList | None:
    """The chunk list stored at ``address``, or None if ``data`` is not one (an ordinary
    object, or a document naming another digest)."""
    if not data.startswith(MAGIC):
        return None
    try:
        body = json.loads(data[len(MAGIC):])
        digest, size, raw = body["digest"], body["size"], body["chunks"]
        if digest != address or not isinstance(size, int) or not isinstance(raw, list):
            return None
        chunks = tuple((format_digest(h), n) for h, n in raw)
    except (ValueError, KeyError, TypeError, InvalidInput):
        return None
    if any(not isinstance(n, int) or n <= 0 for _, n in chunks) or sum(
            n for _, n in chunks) != size:
        return None
    return ChunkList(digest, size, chunks)
