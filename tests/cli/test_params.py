"""Argument types shared by commands: one spelling of durations for cleanup, gc, data gc."""

from __future__ import annotations

import pytest

from modelyard.cli.params import duration
from modelyard.errors import InvalidInput


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0), ("90", 90.0), ("90s", 90.0), (" 30m ", 1800.0), ("1.5h", 5400.0), ("2D", 172800.0)])
def test_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert duration(text, "--grace") == seconds


@pytest.mark.parametrize("text", ["", "1w", "-1h", "h", "1h30m", "\u0661h"])
def test_a_bad_duration_names_the_option_and_the_spellings(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"--older-than takes a duration such as 0, 90s"):
        duration(text, "--older-than")
