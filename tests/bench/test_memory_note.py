"""The harness tells when the VM returns freed memory to its host at once (README, "Memory
on a VM"), and records the setting with every run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import harness


@pytest.mark.parametrize(("content", "recorded", "warned"), [
    ("0\n", 0, True), ("300000\n", 300000, False), (None, None, False), ("junk", None, False)])
def test_the_page_reporting_delay_is_recorded_and_zero_is_warned_about(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None,
        recorded: int | None, warned: bool) -> None:
    setting = tmp_path / "min_free_ms"
    if content is not None:
        setting.write_text(content)
    monkeypatch.setattr(harness, "_PAGE_REPORTING", setting)
    assert harness.machine()["freed_memory_reported_after_ms"] == recorded
    warning = harness.memory_warning()
    assert (warning is not None) == warned
    if warning is not None:
        assert f"echo 300000 > {setting}" in warning
