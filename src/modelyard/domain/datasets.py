"""Registered dataset versions (``datasets:/NAME/3``): the record and its address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelyard.domain.codec import Record
from modelyard.domain.names import check_model_name, check_version_number
from modelyard.errors import InvalidInput

SCHEME = "datasets:/"


@dataclass(frozen=True)
class DatasetVersion(Record):
    name: str
    version: int
    digest: str
    kind: str  # "file" or "dir"
    artifact_name: str  # the file name of a single-file dataset; "" for a directory
    size: int
    file_count: int
    source: str
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: datetime
    computed = ("uri",)

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.name}/{self.version}"


def is_dataset_uri(text: object) -> bool:
    return isinstance(text, str) and text.startswith(SCHEME)


def parse_dataset_uri(uri: str) -> tuple[str, int | None]:
    """``datasets:/NAME/3`` → ("NAME", 3); ``datasets:/NAME`` or ``…/latest`` → ("NAME", None)."""
    if not is_dataset_uri(uri):
        raise InvalidInput(f"invalid dataset address {uri!r}: expected datasets:/NAME/VERSION")
    name, _, ref = uri[len(SCHEME):].strip("/").partition("/")
    if "/" in ref:
        raise InvalidInput(f"invalid dataset address {uri!r}: expected datasets:/NAME/VERSION")
    check_model_name(name)
    if ref in ("", "latest"):
        return name, None
    return name, check_version_number(ref[1:] if ref[:1] in "vV" else ref)
