"""The pointer file format: rendering, parsing and clear refusals."""

from __future__ import annotations

import pytest

from modelyard.domain import pointer
from modelyard.domain.pointer import Pointer
from modelyard.errors import InvalidInput

DIGEST = "blake3:" + "ab" * 32


def test_round_trip_for_files_and_folders() -> None:
    for p in (Pointer(DIGEST, "file", 10, 1), Pointer(DIGEST, "dir", 300, 7)):
        text = pointer.render(p)
        assert "hash: blake3" in text and "format: 1" in text
        assert pointer.parse(text) == p
    assert "files: 7" in pointer.render(Pointer(DIGEST, "dir", 300, 7))


@pytest.mark.parametrize(("text", "message"), [
    ("format: 1\nhash: blake3\nkind: file\nsize: 1\n", "has no digest"),
    ("format: 1\nhash: blake3\nkind: file\nsize: 1\ndigest: blake3:xyz\n", "malformed digest"),
    (f"format: 1\nhash: md5\nkind: file\nsize: 1\ndigest: {DIGEST}\n", "unsupported hash"),
    (f"format: 2\nhash: blake3\nkind: file\nsize: 1\ndigest: {DIGEST}\n", "pointer format"),
    (f"format: 1\nhash: blake3\nkind: dir\nsize: 1\ndigest: {DIGEST}\n", "files must be"),
    (f"format: 1\nhash: blake3\nkind: link\nsize: 1\ndigest: {DIGEST}\n", "kind must be"),
    ("format: [1\n", "not valid YAML"),
    ("just text\n", "not a Modelyard pointer"),
])
def test_bad_pointers_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        pointer.parse(text, "data/x.yard")
    assert "data/x.yard" in caught.value.message
