"""Pointer files (``PATH.yard``): the few lines of YAML that git versions instead of the data.

Pure parsing and rendering, no I/O, so the same rules apply to a pointer read from the
working tree and to one read from an old commit with ``git show``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.domain.codec import Record
from modelyard.errors import InvalidInput

FORMAT = 1
SUFFIX = ".yard"
DIGEST_RE = re.compile(r"blake3:[0-9a-f]{64}")
HEADER = "# Modelyard data pointer: commit this file; the data itself lives in the cache.\n"

Kind = Literal["file", "dir"]
_VALID = ("a valid pointer reads: 'format: 1', 'hash: blake3', 'kind: file' (or dir), "
          "'digest: blake3:<64 hex>', 'size: BYTES' (and 'files: N' for a dir); restore it "
          "from git or re-create it with 'modelyard data add'")


@dataclass(frozen=True, slots=True)
class Pointer(Record):
    """What one pointer file records about its data."""

    digest: str
    kind: Kind
    size: int
    file_count: int


def render(pointer: Pointer) -> str:
    """The pointer's file content; keys in a fixed order so diffs stay one-line."""
    lines = [f"format: {FORMAT}", "hash: blake3", f"kind: {pointer.kind}",
             f"digest: {pointer.digest}", f"size: {pointer.size}"]
    if pointer.kind == "dir":
        lines.append(f"files: {pointer.file_count}")
    return HEADER + "\n".join(lines) + "\n"


def parse(text: str, source: str = "pointer") -> Pointer:
    """Validate a pointer file's text; InvalidInput naming ``source`` and the bad field."""
    import yaml  # imported on first use: a registry read never parses YAML

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source} is not valid YAML: {_first_line(exc)}", path=source) from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{source} is not a Modelyard pointer (expected YAML keys)",
                           hint=_VALID, path=source)
    if "format" not in doc:
        raise InvalidInput(f"{source} has no 'format' line, so it is not a Modelyard pointer "
                           "(or was edited by hand)", hint=_VALID, path=source)
    if doc.get("format") != FORMAT:
        raise InvalidInput(f"{source}: unsupported pointer format {doc.get('format')!r}; "
                           f"expected {FORMAT}", hint=_VALID, path=source)
    if doc.get("hash") != "blake3":
        raise InvalidInput(f"{source}: unsupported hash {doc.get('hash')!r}; expected blake3",
                           path=source)
    digest = doc.get("digest")
    if digest is None:
        raise InvalidInput(f"{source} has no digest", hint="re-create it with 'modelyard data add'",
                           path=source)
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise InvalidInput(f"{source} has a malformed digest {digest!r}: expected blake3:<64 hex>",
                           hint="restore it from git or re-create it with 'modelyard data add'",
                           path=source)
    kind = doc.get("kind")
    if kind not in ("file", "dir"):
        raise InvalidInput(f"{source}: kind must be 'file' or 'dir', got {kind!r}", path=source)
    size = _count(doc, "size", source)
    files = _count(doc, "files", source) if kind == "dir" else 1
    return Pointer(digest=digest, kind=kind, size=size, file_count=files)


def _count(doc: dict[str, Any], key: str, source: str) -> int:
    value = doc.get(key)
    if type(value) is not int or value < 0:
        raise InvalidInput(f"{source}: {key} must be a non-negative integer, got {value!r}",
                           path=source)
    return value


def is_pointer_path(path: str) -> bool:
    return path.endswith(SUFFIX) and len(path) > len(SUFFIX)


def data_path(pointer_path: str) -> str:
    """``data/train.csv`` for ``data/train.csv.yard``."""
    return pointer_path[: -len(SUFFIX)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
