"""'Did you mean …?': the closest known names to a mistyped one (pure, difflib)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, known: Iterable[str], *, limit: int = 3) -> list[str]:
    """Up to ``limit`` known names that look like ``word``, best first (case-insensitive)."""
    by_folded: dict[str, str] = {}
    for name in known:
        by_folded.setdefault(name.casefold(), name)
    matches = difflib.get_close_matches(word.casefold(), list(by_folded), n=limit, cutoff=0.6)
    return [by_folded[m] for m in matches]


def did_you_mean(word: str, known: Iterable[str], *, quote: str = "'") -> str | None:
    """``"did you mean 'fraud'?"`` (or ``… 'a' or 'b'?``), or ``None`` when nothing is close."""
    found = closest(word, known)
    if not found:
        return None
    return "did you mean " + " or ".join(f"{quote}{n}{quote}" for n in found) + "?"


def with_suggestion(word: str, known: Iterable[str], otherwise: str) -> str:
    """A NotFound hint: "did you mean …?" when something is close, then ``otherwise``."""
    suggestion = did_you_mean(word, known)
    return f"{suggestion} ({otherwise})" if suggestion else otherwise
