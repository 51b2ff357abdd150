"""Argument types shared by commands: a version number written ``3`` or ``v3``, a duration
written ``90s``, ``30m``, ``1h`` or ``2d``."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from modelyard.errors import InvalidInput

_NUMBER_RE = re.compile(r"[vV]?([0-9]+)", re.ASCII)  # with fullmatch
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.ASCII)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def version_number(text: str) -> int:
    """``3`` or ``v3`` → 3; anything else is a usage error that shows both spellings."""
    if isinstance(text, int):
        return text
    match = _NUMBER_RE.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a version number: write 3 or v3")
    return int(match.group(1))


VersionArg = Annotated[int, typer.Argument(
    parser=version_number, metavar="VERSION", help="A version number: 3 or v3.")]


def duration(text: str, option: str) -> float:
    """Seconds from ``0``, ``90``, ``90s``, ``30m``, ``1h`` or ``2d``, given to ``option``."""
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if match is None:
        raise InvalidInput(f"{option} takes a duration such as 0, 90s, 30m, 1h or 2d; "
                           f"got {text!r}")
    return float(match[1]) * _UNIT_SECONDS[match[2]]
