"""Sign-in with a token, sign-out, and the front door."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response

from modelyard.errors import Unauthenticated
from modelyard.server.auth import audit_refusal
from modelyard.web import session
from modelyard.web.views import (
    FormFields,
    Posting,
    SignInRequired,
    page_router,
    redirect,
    render,
    safe_next,
    url,
    visit,
)

routes = page_router()
SIGNIN_FORM_LIFE = timedelta(hours=1)


@routes.get("/")
def home() -> Response:
    return redirect("/models")


@routes.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    try:
        visit(request)
        return redirect(safe_next(next))
    except SignInRequired:
        pass
    return _login_form(request, next)


def _login_form(request: Request, next: str | None, error: str | None = None,
                status: int = 200) -> Response:
    nonce = session.new_signin_nonce()
    response = render(request, "login.html", http_status=status, next=safe_next(next),
                      signin=nonce, error=error)
    session.set_cookie(response, request, session.SIGNIN_COOKIE, nonce, SIGNIN_FORM_LIFE)
    return response


@routes.post("/login")
def login(request: Request, fields: FormFields) -> Response:
    target = fields.get("next")
    if not session.signin_ok(request, fields.get("signin")):
        return _login_form(request, target, "The sign-in form expired: please try again.",
                           status=403)
    backend = request.app.state.backend
    try:
        _, token = session.sign_in(backend.db, backend.store, fields.get("token", "").strip())
    except Unauthenticated as refused:
        audit_refusal(backend.db, refused, "web sign-in", None)
        return _login_form(request, target, refused.message, status=401)
    response = redirect(safe_next(target))
    session.set_cookie(response, request, session.SESSION_COOKIE, token,
                       session.SESSION_LENGTH)
    session.clear_cookie(response, request, session.SIGNIN_COOKIE)
    return response


@routes.post("/logout")
def logout(request: Request, posted: Posting) -> Response:
    token_id = session.session_id(posted.visit.session)
    if token_id is not None:
        posted.visit.registry.revoke_token(token_id)
    response = redirect(url("/login", notice="signed-out"))
    session.clear_cookie(response, request, session.SESSION_COOKIE)
    return response
