"""Users and their tokens as the registry hands them out, and the rules for their names.

A token reads ``myd_<id>_<secret>``: the id is public (lists show it, ``tokens revoke`` takes
it, the server looks the token up by it) and the secret is shown once, when the token is
made; the registry keeps only a hash of it. The prefix makes a leaked token easy to spot
in logs and for secret scanners. Entities carry public fields only, never the hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from modelyard.domain.codec import Record
from modelyard.domain.principal import SYSTEM_USER, Role, check_user
from modelyard.domain.times import as_utc, parse_time
from modelyard.errors import InvalidInput

TOKEN_PREFIX = "myd"
TOKEN_ID_RE = re.compile(r"[0-9a-f]{12}", re.ASCII)  # with fullmatch; what tokens revoke takes
# The id, then ``secrets.token_urlsafe(32)``: 43 characters of the URL-safe alphabet.
_TOKEN_RE = re.compile(rf"{TOKEN_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})", re.ASCII)
_DAYS_RE = re.compile(r"([0-9]{1,5})d", re.ASCII)
MAX_TOKEN_NAME = 128


class TokenStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DISABLED = "disabled"  # its user is disabled


@dataclass(frozen=True)
class User(Record):
    computed = ("disabled",)

    name: str
    role: Role
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None



@dataclass(frozen=True)
class Token(Record):
    """A token's public record: who it is for, when it stops working, when it was last used
    (to the minute). ``status`` is as of when it was read."""

    id: str
    user: str
    name: str
    status: TokenStatus
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


def token_status(*, now: datetime, expires_at: datetime | None, revoked_at: datetime | None,
                 user_disabled: bool) -> TokenStatus:
    """Whether a token works now, and if not the first reason (in the order they are told)."""
    if revoked_at is not None:
        return TokenStatus.REVOKED
    if user_disabled:
        return TokenStatus.DISABLED
    if expires_at is not None and expires_at <= now:
        return TokenStatus.EXPIRED
    return TokenStatus.ACTIVE


def format_token(token_id: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}_{token_id}_{secret}"


def split_token(text: str) -> tuple[str, str] | None:
    """(public id, secret) of a well-formed token; None for anything else."""
    match = _TOKEN_RE.fullmatch(text) if isinstance(text, str) and len(text) < 100 else None
    return (match.group(1), match.group(2)) if match else None


def check_token_id(token_id: str) -> str:
    if not isinstance(token_id, str) or not TOKEN_ID_RE.fullmatch(token_id):
        raise InvalidInput(f"invalid token id {token_id!r}: expected 12 hexadecimal digits",
                           hint="see 'modelyard tokens list'")
    return token_id


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {role!r}: expected one of {choices}") from None


def check_new_user(name: str) -> str:
    """A valid user name that is not the registry's own (in any spelling of its case)."""
    check_user(name)
    if name.casefold() == SYSTEM_USER:
        raise InvalidInput(f"{name!r} is reserved for the registry's own decisions",
                           hint="choose another user name")
    return name


def check_token_name(name: str) -> str:
    """A token's label (what it is for: 'ci', 'laptop'): printable, at most 128 characters."""
    if len(name) > MAX_TOKEN_NAME or not name.isprintable():
        raise InvalidInput(f"invalid token name {name[:40]!r}: use at most {MAX_TOKEN_NAME} "
                           "printable characters")
    return name


def expiry(expires: datetime | timedelta | str | None, now: datetime) -> datetime | None:
    """When a token made ``now`` expires (None: never). ``expires`` is a time, a duration, or
    text: ``30d`` (days from now) or an ISO-8601 date or time (a date means its start; UTC
    unless an offset is given). It must be in the future."""
    if expires is None:
        return None
    if isinstance(expires, timedelta):
        at = now + expires
    elif isinstance(expires, datetime):
        at = as_utc(expires)
    elif days := _DAYS_RE.fullmatch(expires.strip()):
        at = now + timedelta(days=int(days.group(1)))
    else:
        try:
            at = parse_time(expires.strip())
        except InvalidInput:
            raise InvalidInput(f"invalid expiry {expires!r}: write a number of days (30d) or a "
                               "date (2027-01-31)") from None
    if at <= now:
        raise InvalidInput(f"the expiry {at.isoformat()} is not in the future",
                           hint="give a later date, or a number of days such as 30d")
    return at
