"""Identity for a shared registry: users with one role each, their bearer tokens, and turning
a token into the ``Principal`` a request runs as.

``authenticate`` and ``init_admin`` are functions, not operations: they run before there is a
principal to check. A token's secret is 256 random bits, so a fast hash (BLAKE3, as for
content) is right; a password hash would only slow every request. The hash is compared in
constant time after a lookup by the token's public id. Every refusal is one ``TokenRefused``
with one message, whatever failed; the reason is kept for the audit (``record_refusal``), not
told to the caller. Every change writes an audit event naming the user it concerns in
``after["user"]``; neither a secret nor its hash is ever in one.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from modelyard.domain.access import (
    Token,
    TokenStatus,
    User,
    check_new_user,
    check_role,
    check_token_id,
    check_token_name,
    expiry,
    format_token,
    split_token,
    token_status,
)
from modelyard.domain.paging import Page, check_max_results, collect, decode_token
from modelyard.domain.principal import SYSTEM_USER, Actor, Permission, Principal, Role
from modelyard.domain.suggest import with_suggestion
from modelyard.errors import AlreadyExists, InvalidTransition, NotFound, Unauthenticated
from modelyard.services.base import Clock, UseCase, in_utc, utc_now
from modelyard.services.operations import operation
from modelyard.storage.content.hashing import hash_bytes
from modelyard.storage.sql import access_repository as access
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql.database import Database

USE_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often per token
REFUSED = "invalid, expired or revoked token"


class TokenRefused(Unauthenticated):
    """A token that does not authenticate. ``details["reason"]`` says which check failed
    (malformed, unknown, wrong secret, revoked, user disabled, expired) for the audit log; the
    wire body (``to_dict``) leaves details out, so a caller cannot tell a revoked token from a
    made-up one."""

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "hint": self.hint,
                          "details": {}}}


def _refuse(reason: str, **details: Any) -> TokenRefused:
    return TokenRefused(REFUSED, hint="check MODELYARD_TOKEN, or make a new token with "
                                      "'modelyard tokens create'", reason=reason, **details)


def _hash(secret: str) -> str:
    return hash_bytes(secret.encode())


def authenticate(db: Database, token: str, *, clock: Clock = utc_now) -> Principal:
    """The principal a bearer token stands for (its user, with the user's role now), or
    ``TokenRefused``. Records the use at most once a minute per token."""
    now = clock()
    parts = split_token(token)
    if parts is None:
        raise _refuse("malformed")
    token_id, secret = parts
    with db.read() as conn:
        found = access.find_token(conn, token_id)
    if found is None:
        raise _refuse("unknown", token=token_id)
    if not hmac.compare_digest(found.secret_hash, _hash(secret)):
        raise _refuse("wrong secret", token=token_id, user=found.user)
    status = token_status(now=now, expires_at=found.expires_at, revoked_at=found.revoked_at,
                          user_disabled=found.user_disabled_at is not None)
    if status is not TokenStatus.ACTIVE:
        reason = "user disabled" if status is TokenStatus.DISABLED else str(status)
        raise _refuse(reason, token=token_id, user=found.user)
    if found.last_used_at is None or found.last_used_at <= now - USE_RESOLUTION:
        with db.transaction() as conn:
            access.touch_token(conn, token_id, now, unless_since=now - USE_RESOLUTION)
    return Principal(found.user, frozenset({Role(found.user_role)}))


def init_admin(db: Database, name: str, *, clock: Clock = utc_now) -> tuple[User, str]:
    """The only bootstrap: make the first user, an admin, and their token (shown once).
    Refused once any user exists; audited as done by the registry itself."""
    name, now = check_new_user(name), clock()
    with db.transaction() as conn:
        access.lock_bootstrap(conn)
        if access.count_users(conn):
            raise InvalidTransition(
                "the registry already has users: the first admin is made only once",
                hint="an admin adds users with 'modelyard users create NAME --role ROLE'")
        return _add_user(conn, name, Role.ADMIN, Actor(SYSTEM_USER), now)


def record_refusal(db: Database, *, operation: str, reason: str, user: str | None = None,
                   clock: Clock = utc_now) -> None:
    """Audit a refused request (401 or 403) in a transaction of its own, since the refused
    one never commits: ``access.denied``, recorded by the registry, for ``user`` (None when
    no token authenticated) attempting ``operation``."""
    with db.transaction() as conn:
        audit.record(conn, at=clock(), actor=SYSTEM_USER, action="access.denied",
                     after={"user": user, "operation": operation, "reason": reason})


def _add_user(conn: Connection, name: str, role: Role, who: Actor, now: datetime
              ) -> tuple[User, str]:
    if access.find_user(conn, name) is not None:
        raise AlreadyExists(f"user {name!r} already exists", hint="see 'modelyard users list'")
    row = access.insert_user(conn, name=name, role=role.value, at=now, by=who.user)
    audit.record(conn, at=now, actor=who, action="user.create",
                 after={"user": name, "role": role.value})
    _, plaintext = _issue(conn, row, "", None, who, now)
    return _to_user(row), plaintext


def _issue(conn: Connection, owner: access.UserRow, name: str, expires_at: datetime | None,
           who: Actor, now: datetime) -> tuple[Token, str]:
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    secret_hash = _hash(secret)
    access.insert_token(conn, token_id=token_id, user_id=owner.id, name=name,
                        secret_hash=secret_hash, at=now, by=who.user, expires_at=expires_at)
    audit.record(conn, at=now, actor=who, action="token.create",
                 after={"user": owner.name, "token": token_id, "name": name,
                        "expires_at": expires_at.isoformat() if expires_at else None,
                        "fingerprint": access.secret_fingerprint(secret_hash)})
    token = Token(id=token_id, user=owner.name, name=name, status=TokenStatus.ACTIVE,
                  created_at=now, created_by=who.user, expires_at=expires_at)
    return token, format_token(token_id, secret)


def _to_user(row: access.UserRow) -> User:
    return User(name=row.name, role=Role(row.role), created_at=row.created_at,
                created_by=row.created_by, disabled_at=row.disabled_at)


def _to_token(row: access.TokenRow, now: datetime) -> Token:
    status = token_status(now=now, expires_at=row.expires_at, revoked_at=row.revoked_at,
                          user_disabled=row.user_disabled_at is not None)
    return Token(id=row.id, user=row.user, name=row.name, status=status,
                 created_at=row.created_at, created_by=row.created_by,
                 expires_at=row.expires_at, revoked_at=row.revoked_at,
                 last_used_at=row.last_used_at)


class Access(UseCase):
    """Users, roles and tokens. Admins manage users; anyone manages their own tokens."""

    # -- users --------------------------------------------------------------------------
    @operation(Permission.ADMIN)
    def create_user(self, name: str, role: Role | str) -> tuple[User, str]:
        """Add a user with one role, and their first token (shown once: only a hash is kept)."""
        name, chosen, now = check_new_user(name), check_role(role), self.clock()
        with self.db.transaction() as conn:
            return _add_user(conn, name, chosen, self._actor(None), now)

    @operation(Permission.ADMIN, changes=False)
    def list_users(
        self, *, max_results: int | None = None, page_token: str | None = None
    ) -> Page[User]:
        """Every user, disabled ones too, by name."""
        limit, cursor = check_max_results(max_results), decode_token(page_token, "users", 1)
        with self.db.read() as conn:
            return collect(lambda after, n: [_to_user(r) for r in access.list_users(
                conn, cursor=after, limit=n)], lambda u: (u.name,), limit, cursor, kind="users")

    @operation(Permission.ADMIN)
    def set_role(self, name: str, role: Role | str) -> User:
        """Give a user another role; their tokens carry it from their next request."""
        chosen, now = check_role(role), self.clock()
        with self.db.transaction() as conn:
            row = self._user(conn, name)
            if row.role == chosen.value:
                return _to_user(row)
            if chosen is not Role.ADMIN:
                self._keep_an_admin(conn, row, f"make {name!r} a {chosen.value}")
            access.set_role(conn, row.id, chosen.value)
            audit.record(conn, at=now, actor=self._actor(None), action="user.role",
                         before={"user": name, "role": row.role},
                         after={"user": name, "role": chosen.value})
        return _to_user(replace(row, role=chosen.value))

    @operation(Permission.ADMIN)
    def disable_user(self, name: str) -> User:
        """Disable a user: their tokens stop working at once; the name stays taken."""
        now = self.clock()
        with self.db.transaction() as conn:
            row = self._user(conn, name)
            if row.disabled_at is not None:
                raise InvalidTransition(f"user {name!r} is already disabled")
            self._keep_an_admin(conn, row, f"disable {name!r}")
            access.disable_user(conn, row.id, now)
            audit.record(conn, at=now, actor=self._actor(None), action="user.disable",
                         before={"user": name, "disabled": False},
                         after={"user": name, "disabled": True})
        return _to_user(replace(row, disabled_at=now))

    def _user(self, conn: Connection, name: str) -> access.UserRow:
        row = access.find_user(conn, name)
        if row is None:
            known = [u.name for u in access.list_users(conn)]
            raise NotFound(f"user {name!r} not found", hint=with_suggestion(
                name, known, "an admin adds users with 'modelyard users create NAME --role "
                             "ROLE'"), user=name)
        return row

    def _keep_an_admin(self, conn: Connection, row: access.UserRow, what: str) -> None:
        """Refuse to leave the registry without an enabled admin: ``init_admin`` works only
        on an empty registry, so nobody could manage users again."""
        if row.role != Role.ADMIN.value or row.disabled_at is not None:
            return
        admins = access.lock_active_admins(conn, Role.ADMIN.value)
        if admins == [row.name]:
            raise InvalidTransition(f"cannot {what}: they are the last enabled admin",
                                    hint="make another user an admin first")

    # -- tokens -------------------------------------------------------------------------
    @operation(Permission.READ, changes=True)
    def create_token(
        self, name: str | None = None, *, expires: datetime | timedelta | str | None = None,
        user: str | None = None,
    ) -> tuple[Token, str]:
        """Make a token for yourself (an admin: for ``user``); the token is shown only now.

        ``expires``: a time, a duration, ``30d`` or an ISO date; None never expires."""
        owner = self._subject(user, "create tokens for")
        label, now = check_token_name(name or ""), self.clock()
        expires_at = expiry(expires, now)
        expires_at = in_utc(expires_at, "expiry") if expires_at is not None else None
        with self.db.transaction() as conn:
            row = self._user(conn, owner)
            if row.disabled_at is not None:
                raise InvalidTransition(f"user {owner!r} is disabled: a token would not work")
            return _issue(conn, row, label, expires_at, self._actor(None), now)

    @operation(Permission.READ)
    def list_tokens(
        self, user: str | None = None, *, max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page[Token]:
        """Your tokens (an admin: ``user``'s), oldest first, revoked and expired ones too."""
        owner = self._subject(user, "list the tokens of")
        limit, cursor = check_max_results(max_results), decode_token(page_token, "tokens", 2)
        now = self.clock()
        with self.db.read() as conn:
            user_id = self._user(conn, owner).id
            return collect(lambda after, n: [_to_token(r, now) for r in access.list_tokens(
                conn, user_id, cursor=after, limit=n)], lambda t: (t.created_at, t.id),
                limit, cursor, kind="tokens")

    @operation(Permission.READ, changes=True)
    def revoke_token(self, token_id: str) -> Token:
        """Revoke one of your tokens (an admin: anyone's) by its id; it stops working at once."""
        check_token_id(token_id)
        now = self.clock()
        with self.db.transaction() as conn:
            row = access.find_token(conn, token_id)
            if row is None:
                raise NotFound(f"token {token_id!r} not found", hint="see 'modelyard tokens list'",
                               token=token_id)
            if row.user != self.ctx.principal.user:
                self.ctx.principal.require(Permission.ADMIN, "revoke another user's token")
            if not access.revoke_token(conn, token_id, now):
                raise InvalidTransition(f"token {token_id!r} is already revoked")
            audit.record(conn, at=now, actor=self._actor(None), action="token.revoke",
                         after={"user": row.user, "token": token_id})
        return _to_token(replace(row, revoked_at=now), now)

    def _subject(self, user: str | None, what: str) -> str:
        """The user a token call is about: the caller, or (admins only) someone else."""
        me = self.ctx.principal
        if user is None or user == me.user:
            return me.user
        me.require(Permission.ADMIN, f"{what} {user!r}")
        return user
