"""Validation of user-chosen names: models, aliases, tags, key=value pairs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from modelyard.domain.stages import Stage
from modelyard.errors import InvalidInput

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,249}$")
_VERSION_ALIAS_RE = re.compile(r"^v\d+$", re.IGNORECASE)
RESERVED_ALIASES = frozenset({"latest", *(s.value for s in Stage)})


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise ``InvalidInput``."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(
            f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            name=name,
        )
    return name


def check_alias(alias: str) -> str:
    """Aliases are free names, except the ones that already mean something in an address."""
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter",
            alias=alias,
        )
    if alias.lower() in RESERVED_ALIASES or _VERSION_ALIAS_RE.match(alias):
        raise InvalidInput(
            f"alias {alias!r} is reserved: 'latest', stage names and v<digits> "
            "already have a meaning in model addresses",
            alias=alias,
        )
    return alias


def check_key(key: str, what: str = "key") -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise InvalidInput(f"invalid {what} {key!r}", key=key)
    return key


def check_version_number(version: Any) -> int:
    """Versions are positive integers; ``"3"`` from a command line is accepted too."""
    if isinstance(version, int) and not isinstance(version, bool):
        number = version
    elif isinstance(version, str) and version.strip().isdigit():
        number = int(version)
    else:
        raise InvalidInput(f"invalid version {version!r}: expected a positive integer")
    if number < 1:
        raise InvalidInput(f"invalid version {version!r}: expected a positive integer")
    return number


def parse_scalar(text: str) -> Any:
    """Read a CLI value: numbers and booleans become JSON scalars, anything else stays text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return text


def parse_pairs(items: Iterable[str], what: str, *, scalars: bool = True) -> dict[str, Any]:
    """Parse ``K=V`` arguments; a malformed one is an error, not a silent skip."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"malformed {what} {item!r}: expected KEY=VALUE")
        check_key(key, f"{what} name")
        result[key] = parse_scalar(value) if scalars else value
    return result


def check_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        check_key(key, "metric name")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"metric {key!r} must be a number, got {value!r}")
        out[key] = float(value)
    return out


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    for key, value in params.items():
        check_key(key, "param name")
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise InvalidInput(f"param {key!r} must be a string, number or boolean")
    return dict(params)


def check_tags(tags: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tags.items():
        check_key(key, "tag name")
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out
