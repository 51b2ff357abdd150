"""data diff against the working tree sees edits not yet added (as data status does);
a pointer without a format line says what a valid one looks like."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gitdata import commit, write_tree

from modelyard import data
from modelyard.domain import pointer as pointers
from modelyard.errors import InvalidInput


def test_diff_without_arguments_shows_unadded_edits(repo: Path, cli: Any) -> None:
    write_tree(repo, {"d/a.txt": "one", "d/b.txt": "two", "f.bin": b"\0" * 10,
                      "gone.txt": "bye"})
    data.add("d", "f.bin", "gone.txt")
    commit(repo, "v1")
    assert data.diff().to_dict() == {"old": "HEAD", "new": "workspace", "added": [],
                                     "removed": [], "modified": []}
    write_tree(repo, {"d/a.txt": "ONE", "d/c.txt": "three", "f.bin": b"\1" * 10})
    (repo / "d" / "b.txt").unlink()
    (repo / "gone.txt").unlink()
    assert data.status().modified == ["d", "f.bin"]  # nothing was added
    report = cli("diff", "--json")
    assert report["modified"] == ["d/a.txt", "f.bin"]
    assert report["added"] == ["d/c.txt"]
    assert report["removed"] == ["d/b.txt", "gone.txt"]
    assert "modified: d/a.txt" in cli("diff").output


def test_pointer_without_format_shows_a_valid_one() -> None:
    digest = "blake3:" + "0" * 64
    with pytest.raises(InvalidInput, match="has no 'format' line") as caught:
        pointers.parse(f"hash: blake3\nkind: file\nsize: 1\ndigest: {digest}\n", "x.yard")
    hint = caught.value.hint or ""
    assert "format: 1" in hint and "digest: blake3:<64 hex>" in hint and "data add" in hint
    with pytest.raises(InvalidInput) as other:
        pointers.parse("just text\n", "y.yard")
    assert "format: 1" in (other.value.hint or "")
