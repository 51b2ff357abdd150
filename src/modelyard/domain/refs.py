"""Model addresses: ``models:/NAME/3``, ``models:/NAME/production``, ``models:/NAME@alias``.

The CLI's short references (``3``, ``v3``, ``production``, ``@champion``, ``latest``) parse
into the same ``VersionRef`` so every face resolves versions the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from modelyard.domain.names import check_alias, check_model_name, check_version_number
from modelyard.domain.stages import Stage
from modelyard.errors import InvalidInput

SCHEME = "models:/"
_VERSION_RE = re.compile(r"v?([0-9]+)", re.IGNORECASE | re.ASCII)  # with fullmatch


class RefKind(StrEnum):
    NUMBER = "number"
    STAGE = "stage"
    ALIAS = "alias"
    LATEST = "latest"


@dataclass(frozen=True)
class VersionRef:
    name: str
    kind: RefKind
    value: str | int | None = None

    def __str__(self) -> str:
        if self.kind is RefKind.ALIAS:
            return f"{SCHEME}{self.name}@{self.value}"
        if self.kind is RefKind.LATEST:
            return f"{SCHEME}{self.name}/latest"
        return f"{SCHEME}{self.name}/{self.value}"


def parse_ref(name: str, ref: str | int) -> VersionRef:
    """Parse a short reference to one version of model ``name``."""
    check_model_name(name)
    if isinstance(ref, int) and not isinstance(ref, bool):
        return VersionRef(name, RefKind.NUMBER, check_version_number(ref))
    text = str(ref)
    if text.startswith("@"):
        return VersionRef(name, RefKind.ALIAS, check_alias(text[1:]))
    if text.lower() == "latest":
        return VersionRef(name, RefKind.LATEST)
    match = _VERSION_RE.fullmatch(text)
    if match:
        return VersionRef(name, RefKind.NUMBER, check_version_number(match.group(1)))
    if text.lower() in {s.value for s in Stage}:
        return VersionRef(name, RefKind.STAGE, text.lower())
    raise InvalidInput(
        f"invalid version reference {text!r}: expected a number, a stage "
        "(none, staging, production, archived), 'latest' or @ALIAS"
    )


def parse_model_uri(uri: str) -> VersionRef:
    """Parse ``models:/NAME/REF`` or ``models:/NAME@ALIAS``."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise InvalidInput(f"invalid model address {uri!r}: expected models:/NAME/VERSION")
    rest = uri[len(SCHEME) :].strip("/")
    if "/" in rest:
        name, _, ref = rest.partition("/")
        if not ref or "/" in ref:
            raise InvalidInput(f"invalid model address {uri!r}: expected models:/NAME/VERSION")
        return parse_ref(name, ref)
    if "@" in rest:
        name, _, alias = rest.partition("@")
        return parse_ref(name, "@" + alias)
    raise InvalidInput(
        f"invalid model address {uri!r}: add a version, stage or alias, "
        "e.g. models:/NAME/3, models:/NAME/production or models:/NAME@champion"
    )


def is_model_uri(text: str) -> bool:
    return isinstance(text, str) and text.startswith(SCHEME)
