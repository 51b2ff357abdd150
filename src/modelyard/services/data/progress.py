"""How long operations report progress: files and bytes, to whatever the caller shows.

Methods may be called from worker threads. The CLI draws Rich bars; the Python API
defaults to ``NULL_METER``, which shows nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Meter(Protocol):
    def start(self, description: str, files: int | None, total_bytes: int | None) -> None:
        """A new phase begins (totals may be unknown)."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes were hashed, copied or transferred."""

    def file_done(self) -> None:
        """One more file (object) finished."""


class _NullMeter:
    def start(self, description: str, files: int | None, total_bytes: int | None) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self) -> None:
        pass


NULL_METER: Meter = _NullMeter()


class BytesMeter(_NullMeter):
    """A meter that only forwards bytes to a plain ``progress(nbytes)`` callback."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self._progress = progress

    def advance(self, nbytes: int) -> None:
        if self._progress is not None:
            self._progress(nbytes)
