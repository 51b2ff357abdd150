"""Times at the boundary: every stored time is UTC, and a naive time given by a user is too."""

from __future__ import annotations

from datetime import UTC, datetime

from modelyard.errors import InvalidInput


def as_utc(value: datetime) -> datetime:
    """``value`` with a time zone: a naive time is read as UTC, like the stored times."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_time(text: str) -> datetime:
    """ISO-8601 from a command line or a query string (UTC if it has no offset)."""
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise InvalidInput(
            f"invalid time {text!r}: expected ISO-8601, e.g. 2026-11-27T10:00:00Z"
        ) from None
