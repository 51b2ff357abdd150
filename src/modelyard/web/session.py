"""Browser sessions: a registry token of its own per sign-in, kept in an HttpOnly cookie.

Signing in with a token (the one ``users create`` or ``tokens create`` printed) makes a new,
short-lived token for the same user, named ``web session``; only that one goes into the
browser. Sessions therefore live in the database like every other token (any number of
stateless server processes accept them), expire by themselves, show in ``tokens list``, and
signing out revokes the session's token at once; the token typed in is never stored.

Forms carry a CSRF token derived from the session (an HMAC keyed by the session token,
which only the browser's HttpOnly cookie and the database know), so a page of another site
can neither read nor forge it. The sign-in form, which has no session yet, is protected by
a random value in a cookie of its own that the form must repeat (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from fastapi import Request, Response

from modelyard.domain.access import split_token
from modelyard.domain.principal import Principal
from modelyard.services.access import authenticate
from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database

SESSION_COOKIE = "modelyard_session"
SIGNIN_COOKIE = "modelyard_signin"
SESSION_NAME = "web session"
SESSION_LENGTH = timedelta(hours=12)
_CSRF_CONTEXT = b"modelyard web form"


def sign_in(db: Database, store: ObjectStore, token: str) -> tuple[Principal, str]:
    """The principal of ``token`` and a new session token for that user (``TokenRefused``
    if ``token`` does not authenticate)."""
    principal = authenticate(db, token)
    _, session = Registry(db, store, principal=principal).create_token(
        SESSION_NAME, expires=SESSION_LENGTH)
    return principal, session


def session_of(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def session_id(session: str) -> str | None:
    """The public id of a session token (what ``revoke_token`` takes)."""
    parts = split_token(session)
    return parts[0] if parts else None


def csrf_token(session: str) -> str:
    """The value every form of this session must post back."""
    return hmac.new(session.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_ok(session: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token(session), sent)


def new_signin_nonce() -> str:
    return secrets.token_urlsafe(24)


def signin_ok(request: Request, sent: str | None) -> bool:
    """The sign-in form repeats the random value of its own cookie."""
    expected = request.cookies.get(SIGNIN_COOKIE)
    return bool(expected) and sent is not None and hmac.compare_digest(expected or "", sent)


def is_https(request: Request) -> bool:
    """Served over TLS (uvicorn reads X-Forwarded-Proto from a trusted proxy)."""
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str,
               max_age: timedelta) -> None:
    response.set_cookie(name, value, max_age=int(max_age.total_seconds()), path="/",
                        httponly=True, samesite="lax", secure=is_https(request))


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax",
                           secure=is_https(request))
