"""Row-level queries for users and tokens (see ``access_schema``); nothing here commits.

Rows come back as typed records (``UserRow``, ``TokenRow``) rather than SQLAlchemy rows, so a
misspelt column is a type error, not an ``AttributeError`` on the request path. The two
guards that keep identity consistent under concurrent admins are here too: bootstraps
serialise on the chain's head row, and "the last admin" is counted under row locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, func, or_, select, update

from modelyard.storage.content.hashing import hash_bytes
from modelyard.storage.sql.access_schema import tokens, users
from modelyard.storage.sql.paging import keyset
from modelyard.storage.sql.schema import registry_state


def secret_fingerprint(secret_hash: str) -> str:
    """What the audit log records of a token's stored hash (a hash of it), so ``audit
    verify`` notices a hash swapped in the table without the log publishing the hash."""
    return hash_bytes(secret_hash.encode())


@dataclass(frozen=True)
class UserRow:
    id: int
    name: str
    role: str
    created_at: datetime
    created_by: str
    disabled_at: datetime | None


@dataclass(frozen=True)
class TokenRow:
    """A token with what authentication needs of its owner, read in one query."""

    id: str
    user_id: int
    name: str
    secret_hash: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    user: str
    user_role: str
    user_disabled_at: datetime | None


def _user(row: Row[Any]) -> UserRow:
    return UserRow(**row._mapping)


def _token(row: Row[Any]) -> TokenRow:
    return TokenRow(**row._mapping)


# -- users ---------------------------------------------------------------------------------
def lock_bootstrap(conn: Connection) -> None:
    """Serialise first-admin bootstraps on the chain's head row (SQLite's write lock already
    does), so two at once cannot both see an empty ``users`` table."""
    conn.execute(select(registry_state.c.id).where(registry_state.c.id == 1).with_for_update())


def count_users(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def find_user(conn: Connection, name: str) -> UserRow | None:
    row = conn.execute(select(users).where(users.c.name == name)).one_or_none()
    return _user(row) if row is not None else None


def insert_user(conn: Connection, *, name: str, role: str, at: datetime, by: str) -> UserRow:
    row = conn.execute(users.insert().values(name=name, role=role, created_at=at, created_by=by)
                       .returning(*users.c)).one()
    return _user(row)


def list_users(
    conn: Connection, *, cursor: Sequence[Any] | None = None, limit: int | None = None
) -> list[UserRow]:
    return [_user(row) for row in conn.execute(keyset(select(users), [users.c.name], cursor,
                                                      limit))]


def set_role(conn: Connection, user_id: int, role: str) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(role=role))


def disable_user(conn: Connection, user_id: int, at: datetime) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(disabled_at=at))


def lock_active_admins(conn: Connection, admin_role: str) -> list[str]:
    """Names of the enabled admins, their rows locked until commit: two admins demoting each
    other at once queue here, and the second sees that it would leave none."""
    query = (select(users.c.name)
             .where(users.c.role == admin_role, users.c.disabled_at.is_(None))
             .order_by(users.c.id).with_for_update())
    return list(conn.execute(query).scalars())


# -- tokens --------------------------------------------------------------------------------
def _tokens() -> Select[Any]:
    return select(tokens, users.c.name.label("user"), users.c.role.label("user_role"),
                  users.c.disabled_at.label("user_disabled_at")
                  ).join(users, users.c.id == tokens.c.user_id)


def insert_token(
    conn: Connection, *, token_id: str, user_id: int, name: str, secret_hash: str,
    at: datetime, by: str, expires_at: datetime | None,
) -> None:
    conn.execute(tokens.insert().values(id=token_id, user_id=user_id, name=name,
                                        secret_hash=secret_hash, created_at=at, created_by=by,
                                        expires_at=expires_at))


_FIND_TOKEN = _tokens().where(tokens.c.id == bindparam("token_id"))
"""Built once: a server runs it on every request, and building the join costs as much as
running it."""


def find_token(conn: Connection, token_id: str) -> TokenRow | None:
    row = conn.execute(_FIND_TOKEN, {"token_id": token_id}).one_or_none()
    return _token(row) if row is not None else None


def list_tokens(
    conn: Connection, user_id: int, *, cursor: Sequence[Any] | None = None,
    limit: int | None = None,
) -> list[TokenRow]:
    """A user's tokens, oldest first."""
    query = _tokens().where(tokens.c.user_id == user_id)
    order = [tokens.c.created_at, tokens.c.id]
    return [_token(row) for row in conn.execute(keyset(query, order, cursor, limit))]


def revoke_token(conn: Connection, token_id: str, at: datetime) -> bool:
    """Revoke once: False if the token was already revoked (compare-and-set)."""
    result = conn.execute(update(tokens)
                          .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                          .values(revoked_at=at))
    return result.rowcount == 1


def touch_token(conn: Connection, token_id: str, at: datetime, *, unless_since: datetime) -> None:
    """Record a use, unless one at or after ``unless_since`` is already recorded (so many
    processes serving the same token write it once per interval, not once each)."""
    conn.execute(update(tokens)
                 .where(tokens.c.id == token_id,
                        or_(tokens.c.last_used_at.is_(None), tokens.c.last_used_at < unless_since))
                 .values(last_used_at=at))
