"""Argument types shared by commands: a version number written ``3`` or ``v3``."""

from __future__ import annotations

import re
from typing import Annotated

import typer

_NUMBER_RE = re.compile(r"[vV]?([0-9]+)", re.ASCII)  # with fullmatch


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
