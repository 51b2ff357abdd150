"""Placing cache objects in the working tree: a strategy the filesystem refuses is
dropped for the rest of the checkout, one refused for a single file is not."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from modelyard.services.data import links


def _tries(monkeypatch: pytest.MonkeyPatch, refusal: int) -> list[str]:
    """Reflinks refused with ``refusal``; returns the strategies tried, in order."""
    tried: list[str] = []

    def reflink(source: str, tmp: str, executable: bool) -> None:
        tried.append("reflink")
        Path(tmp).write_bytes(b"")  # what the real one leaves before the ioctl fails
        raise OSError(refusal, "refused")

    def copy(source: str, tmp: str, executable: bool) -> None:
        tried.append("copy")
        links._copy(source, tmp, executable)

    monkeypatch.setitem(links._STRATEGIES, "reflink", reflink)
    monkeypatch.setitem(links._STRATEGIES, "copy", copy)
    return tried


@pytest.mark.parametrize(("refusal", "retried"), [
    (errno.EOPNOTSUPP, False), (errno.EXDEV, False), (errno.EINVAL, False),
    (errno.EMLINK, True), (errno.EACCES, True),
])
def test_a_filesystem_refusal_is_remembered_a_file_refusal_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: int, retried: bool) -> None:
    tried = _tries(monkeypatch, refusal)
    source = tmp_path / "object"
    source.write_bytes(b"content")
    placer = links.Placer(["reflink", "copy"])
    for i in range(3):
        assert placer.place(str(source), str(tmp_path / "out" / f"{i}.bin"), False) == "copy"
    expected = ["reflink", "copy"] * 3 if retried else ["reflink", "copy", "copy", "copy"]
    assert tried == expected
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.bin", "1.bin", "2.bin"]
    assert (tmp_path / "out" / "2.bin").read_bytes() == b"content"
