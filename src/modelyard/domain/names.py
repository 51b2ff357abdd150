"""Validation of user-chosen names: models, aliases, tags, key=value pairs.

Every pattern is applied with ``fullmatch``: ``$`` also matches before a trailing newline,
so "fraud" plus a newline would pass as a second, look-alike ``fraud``. ``re.ASCII`` and
explicit ranges keep Unicode digits and letters out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelyard.domain.stages import Stage
from modelyard.errors import InvalidInput

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)  # use with fullmatch
ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}", re.ASCII)
KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,249}", re.ASCII)
_VERSION_ALIAS_RE = re.compile(r"v[0-9]+", re.IGNORECASE | re.ASCII)
RESERVED_ALIASES = frozenset({"latest", *(s.value for s in Stage)})
MAX_VERSION = 2**31 - 1
"""The largest version number: version columns are INTEGER, 32 bits on PostgreSQL."""
MAX_ID = 2**63 - 1
"""The largest row id (request ids): BIGINT on PostgreSQL, INTEGER on SQLite."""
_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)  # no sign, no spaces, no Unicode digits


def is_name(text: object) -> bool:
    """Whether ``text`` is a valid model, dataset or experiment name (no exception)."""
    return isinstance(text, str) and NAME_RE.fullmatch(text) is not None


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise ``InvalidInput``."""
    return check_name(name, "model name")


def check_name(name: str, what: str) -> str:
    """Model, dataset and experiment names share one rule (they appear in addresses)."""
    if not is_name(name):
        raise InvalidInput(
            f"invalid {what} {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            hint="no spaces, newlines or other control characters",
            name=name,
        )
    return name


def check_alias(alias: str) -> str:
    """Aliases are free names, except the ones that already mean something in an address."""
    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter",
            hint="no spaces, newlines or other control characters",
            alias=alias,
        )
    if alias.lower() in RESERVED_ALIASES or _VERSION_ALIAS_RE.fullmatch(alias):
        raise InvalidInput(
            f"alias {alias!r} is reserved: 'latest', stage names and v<digits> "
            "already have a meaning in model addresses",
            alias=alias,
        )
    return alias


def check_key(key: str, what: str = "key") -> str:
    """Param, metric and tag names: a line of printable ASCII, so keys cannot look alike."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise InvalidInput(
            f"invalid {what} {key!r}: use 1-250 letters, digits, '_', '.', '-', '/' or "
            "spaces, starting with a letter, digit or '_'",
            hint="no newlines or other control characters", key=key,
        )
    return key


def check_version_number(version: Any) -> int:
    """Versions are integers 1..MAX_VERSION; ``"3"`` from a command line is accepted too."""
    return check_number(version, "version",
                        hint="see 'modelyard versions list NAME' for the versions that exist")


def check_number(
    value: Any, what: str, *, low: int = 1, high: int = MAX_VERSION, hint: str | None = None
) -> int:
    """A whole number in ``low..high`` (an int, or its plain decimal text).

    The range is the column's: SQL drivers raise on integers wider than it (SQLite at 64
    bits, PostgreSQL INTEGER at 32), so an unchecked one is a traceback, not an error.
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    if number is None or not low <= number <= high:
        raise InvalidInput(
            f"invalid {what} {_shown(value)}: expected a whole number from {low} to {high}",
            hint=hint,
        )
    return number


def _shown(value: Any) -> str:
    """``repr`` cut short, so a 5,000-digit argument does not flood the terminal."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


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


def parse_metric_pairs(items: Iterable[str]) -> dict[str, float]:
    """``K=V`` metrics, each any number Python reads (``0.91``, ``1e-3``, ``nan``, ``inf``),
    so a diverged run's ``loss=nan`` can be recorded from a shell."""
    metrics: dict[str, float] = {}
    for key, text in parse_pairs(items, "metric", scalars=False).items():
        try:
            metrics[key] = float(text)
        except ValueError:
            raise InvalidInput(f"metric {key!r} must be a number, got {text!r}",
                               hint="e.g. --metric auc=0.91 (nan and inf are numbers too)"
                               ) from None
    return metrics


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


@dataclass(frozen=True)
class VersionFields:
    """A new version's checked metadata: checked where the version is created, and first
    by the content plane, so a bad name fails before any byte is uploaded."""

    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    aliases: list[str]


def check_version_fields(
    name: str, params: dict[str, Any] | None, metrics: dict[str, Any] | None,
    tags: dict[str, Any] | None, aliases: Iterable[str],
) -> VersionFields:
    check_model_name(name)
    return VersionFields(check_params(params or {}), check_metrics(metrics or {}),
                         check_tags(tags or {}), [check_alias(a) for a in aliases])
