"""NaN and infinity where JSON has no word for them.

Python's ``json`` writes non-finite floats as the tokens ``NaN`` and ``Infinity``, which
Python reads back but strict parsers (PostgreSQL's JSON types, a browser's or a webhook
receiver's ``JSON.parse``) refuse. Each place that must emit strict JSON picks a spelling;
this walks a value and applies it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def spell_nonfinite(value: Any, spelling: Callable[[float], Any]) -> Any:
    """``value`` with every NaN or infinite float (in dicts and lists, at any depth)
    replaced by ``spelling(number)``; finite values are returned as they are."""
    if isinstance(value, float) and not math.isfinite(value):
        return spelling(value)
    if isinstance(value, dict):
        return {k: spell_nonfinite(v, spelling) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [spell_nonfinite(v, spelling) for v in value]
    return value


def as_text(number: float) -> str:
    """``"NaN"``, ``"Infinity"`` or ``"-Infinity"``: protobuf JSON's (and MLflow's) words."""
    return "NaN" if math.isnan(number) else "Infinity" if number > 0 else "-Infinity"
