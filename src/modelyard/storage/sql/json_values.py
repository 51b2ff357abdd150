"""JSON columns that keep NaN and infinity on PostgreSQL as SQLite keeps them.

Python's ``json`` writes non-finite floats as the tokens ``NaN``/``Infinity``, which SQLite
stores as text and reads back, but PostgreSQL's JSON types refuse, so a diverged run's
``loss = nan`` registered fine on one backend and failed on the other. On PostgreSQL each
non-finite float is written as the object ``{"$float": "NaN"}`` (or ``"Infinity"``,
``"-Infinity"``) and read back as the float, so every backend returns what it was given.
A stored object whose only key is ``$float`` is read as that number.
"""

from __future__ import annotations

import json
from typing import Any

from modelyard.domain.nonfinite import as_text, spell_nonfinite

_MARK = "$float"
_TOKEN = f'"{_MARK}"'
_TOKEN_BYTES = _TOKEN.encode()


def dumps(value: Any) -> str:
    """``value`` as JSON that PostgreSQL accepts: non-finite floats marked."""
    return json.dumps(spell_nonfinite(value, lambda number: {_MARK: as_text(number)}))


def _restore(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and isinstance(obj.get(_MARK), str):
        return float(obj[_MARK])
    return obj


def loads(text: str | bytes) -> Any:
    """What ``dumps`` wrote (or plain JSON; bytes as psycopg passes them); the marks are
    looked for only where the text has one, so a page of search results parses at
    ``json.loads`` speed."""
    marked = _TOKEN_BYTES in text if isinstance(text, bytes) else _TOKEN in text
    return json.loads(text, object_hook=_restore) if marked else json.loads(text)
