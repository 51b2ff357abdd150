"""Building many records at once without the garbage collector rescanning them all.

CPython starts a collection every 700 new container objects, and a full one whenever the
objects that survived grow by a quarter; a page of 10,000 versions (a dict, a record and
their JSON values each) alive at once is rescanned in full several times while it is
built: 15-25 % of a large search. Records hold no reference cycles, so collection can
wait until the page is built. The pause is global (the collector is), counted across
threads, and restores the collector only if it was on.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Within this block, no garbage collection starts (nested and concurrent blocks
    alike); afterwards it runs as before, the next collection doing the deferred work."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
