"""Keyset pages: a list with the token that continues it, stable under concurrent inserts.

A token is the sort key of the last item returned (opaque to callers: base64 of JSON), so
the next page starts strictly after it whatever was inserted meanwhile; an offset would
skip or repeat rows. ``max_results=None`` returns everything, as before paging existed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from modelyard.errors import InvalidInput

T = TypeVar("T")
MAX_RESULTS = 10_000
Key = tuple[Any, ...]


class Page(list[T]):
    """The items of one page; ``next_page_token`` is None on the last page."""

    def __init__(self, items: Sequence[T] = (), next_page_token: str | None = None) -> None:
        super().__init__(items)
        self.next_page_token = next_page_token


def check_max_results(max_results: int | None) -> int | None:
    if max_results is None:
        return None
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not (
            1 <= max_results <= MAX_RESULTS):
        raise InvalidInput(f"max_results must be a whole number from 1 to {MAX_RESULTS:,}, "
                           f"got {max_results!r}")
    return max_results


def encode_token(kind: str, key: Key) -> str:
    values = [{"dt": v.isoformat()} if isinstance(v, datetime) else v for v in key]
    raw = json.dumps({"kind": kind, "after": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, kind: str, size: int) -> Key | None:
    """The key (of ``size`` values) to start after, or None for the first page; a token of
    another list, or a malformed one, is refused."""
    if token is None or token == "":
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if doc["kind"] != kind or not isinstance(doc["after"], list) or len(
                doc["after"]) != size:
            raise ValueError(kind)
        return tuple(datetime.fromisoformat(v["dt"]) if isinstance(v, dict) else v
                     for v in doc["after"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(f"invalid page token {token[:40]!r} for {kind}",
                           hint="pass the next_page_token of the previous page unchanged"
                           ) from None


def collect(
    fetch: Callable[[Key | None, int | None], Sequence[T]], key: Callable[[T], Key],
    limit: int | None, cursor: Key | None, accept: Callable[[T], bool] | None = None,
    kind: str = "",
) -> Page[T]:
    """One page of the items ``fetch`` yields in key order that ``accept`` keeps.

    ``fetch(cursor, n)`` returns up to ``n`` items after ``cursor`` (all with ``n=None``).
    Filtered lists fetch in batches until the page is full, so a selective filter still
    returns full pages and the token always points at the last item returned; an
    unfiltered list reads one row past the page, only to know whether another follows.
    """
    batch = None if limit is None else limit + 1 if accept is None else max(limit + 1, 100)
    found: list[T] = []
    while True:
        rows = fetch(cursor, batch)
        for row in rows:
            if accept is None or accept(row):
                found.append(row)
                if limit is not None and len(found) > limit:
                    return Page(found[:limit], encode_token(kind, key(found[limit - 1])))
        if batch is None or len(rows) < batch:
            return Page(found)
        cursor = key(rows[-1])
