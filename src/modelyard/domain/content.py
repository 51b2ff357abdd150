"""What metadata operations are told about content: digests and sizes, never paths.

The content plane (``services/files.py``) hashes and stores the caller's files and hands
these records to the metadata operations, which check them against the store before they
commit (a remote caller's record is a claim, not a fact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelyard.errors import IntegrityError, InvalidInput

ContentKind = Literal["file", "dir"]


def content_kind(text: str) -> ContentKind:
    """A kind read back from a row: anything but ``file``/``dir`` is a damaged registry."""
    if text not in ("file", "dir"):
        raise IntegrityError(f"unknown artifact kind {text!r} in the registry")
    return "file" if text == "file" else "dir"


@dataclass(frozen=True)
class StoredContent:
    """A file or directory that is in the object store, by its digest."""

    digest: str
    kind: ContentKind
    size: int
    file_count: int
    name: str = ""  # a single file's name (the name it is downloaded as); "" for a directory

    def __post_init__(self) -> None:
        if self.kind not in ("file", "dir"):
            raise InvalidInput(f"content kind must be 'file' or 'dir', not {self.kind!r}")
        if self.kind == "dir" and self.name:
            raise InvalidInput("a directory's content has no file name")


@dataclass(frozen=True)
class DataInput:
    """Training data named by its content: what a version or run records as an input.

    ``source`` is what the caller named (a path, a pointer file); it is kept as a label.
    """

    digest: str
    size: int
    file_count: int
    source: str
