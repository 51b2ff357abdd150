"""Sign-in, the session cookie, CSRF and sign-out, through the app in-process."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from web_support import SIGNIN_RE, Browser, Seeded, audit_events

from modelyard.services.registry import Registry
from modelyard.web import session
from modelyard.web.views import safe_next
from server.conftest import Served


def test_a_page_without_a_session_redirects_to_sign_in(served: Served) -> None:
    with TestClient(served.app) as anonymous:
        answer = anonymous.get("/models/fraud?metric=auc", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fmodels%2Ffraud%3Fmetric%3Dauc"


def test_sign_in_sets_an_httponly_samesite_session_cookie_of_its_own(
        served: Served, browser: Callable[[str | None], Browser]) -> None:
    user = browser(None)
    page = user.client.get("/login")
    nonce = SIGNIN_RE.search(page.text)
    assert nonce is not None
    answer = user.client.post("/login", data={"token": served.token, "signin": nonce.group(1),
                                              "next": "/requests"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/requests"
    cookie = next(c for c in answer.headers.get_list("set-cookie")
                  if c.startswith(session.SESSION_COOKIE + "="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= flags and "secure" not in flags
    assert "samesite=lax" in cookie.lower()
    value = user.client.cookies[session.SESSION_COOKIE]
    assert value != served.token  # the typed token never goes into the browser
    tokens = Registry(served.backend.db, served.backend.store, user="ana").list_tokens()
    web = [t for t in tokens if t.name == session.SESSION_NAME]
    assert len(web) == 1 and web[0].status == "active" and web[0].expires_at is not None
    assert user.client.get("/requests").status_code == 200


def test_over_https_the_cookie_is_secure(served: Served) -> None:
    with TestClient(served.app, base_url="https://testserver") as secure:
        user = Browser(secure)
        user.sign_in(served.token)
        cookie = secure.cookies.jar
        assert all(c.secure for c in cookie if c.name == session.SESSION_COOKIE)
        assert secure.get("/models").status_code == 200


def test_a_wrong_token_is_refused_and_audited(served: Served,
                                              browser: Callable[[str | None], Browser]) -> None:
    user = browser(None)
    nonce = SIGNIN_RE.search(user.client.get("/login").text)
    assert nonce is not None
    answer = user.client.post("/login", data={"token": "myd_000000000000_" + "x" * 43,
                                              "signin": nonce.group(1)})
    assert answer.status_code == 401
    assert "invalid, expired or revoked token" in answer.text
    assert session.SESSION_COOKIE not in user.client.cookies
    denied = audit_events(served, "access.denied")
    assert denied[-1].after == {"user": None, "operation": "web sign-in", "reason": "unknown"}


def test_the_sign_in_form_needs_its_own_cookie(served: Served,
                                              browser: Callable[[str | None], Browser]) -> None:
    """A page elsewhere cannot sign a victim in as the attacker (login CSRF)."""
    user = browser(None)
    answer = user.client.post("/login", data={"token": served.token, "signin": "forged"})
    assert answer.status_code == 403
    assert session.SESSION_COOKIE not in user.client.cookies


def test_a_post_without_the_sessions_csrf_token_is_refused_and_audited(
        served: Served, site: Seeded, browser: Callable[[str | None], Browser]) -> None:
    bo = browser(site.tokens["bo"])
    for fields in ({"comment": "ok"}, {"comment": "ok", "csrf": "0" * 64}):
        answer = bo.client.post(f"/requests/{site.pending}/approve", data=fields)
        assert answer.status_code == 403
        assert "stale or did not come from this site" in answer.text
    reg = Registry(served.backend.db, served.backend.store, user="ana")
    assert reg.get_request(site.pending).status == "pending"
    denied = audit_events(served, "access.denied")[-2:]
    assert [e.after for e in denied] == [
        {"user": "bo", "operation": f"web /requests/{site.pending}/approve",
         "reason": "bad csrf token"}] * 2


def test_a_post_without_a_session_is_refused_and_audited(served: Served, site: Seeded) -> None:
    with TestClient(served.app) as anonymous:
        answer = anonymous.post(f"/requests/{site.pending}/approve", data={"csrf": "x"},
                                follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    denied = audit_events(served, "access.denied")[-1].after
    assert denied is not None and denied["reason"] == "no session"


def test_a_form_that_is_not_urlencoded_is_refused(served: Served, site: Seeded,
                                                 browser: Callable[[str | None], Browser]
                                                 ) -> None:
    bo = browser(site.tokens["bo"])
    answer = bo.client.post(f"/requests/{site.pending}/approve",
                            json={"csrf": bo.csrf(), "comment": "ok"})
    assert answer.status_code == 403


def test_sign_out_revokes_the_session(served: Served,
                                      browser: Callable[[str | None], Browser]) -> None:
    user = browser(served.token)
    kept = user.client.cookies[session.SESSION_COOKIE]
    answer = user.client.post("/logout", data={"csrf": user.csrf()}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?notice=signed-out"
    assert session.SESSION_COOKIE not in user.client.cookies
    with TestClient(served.app, cookies={session.SESSION_COOKIE: kept}) as replay:
        assert replay.get("/models", follow_redirects=False).status_code == 303
    tokens = Registry(served.backend.db, served.backend.store, user="ana").list_tokens()
    assert [t.status for t in tokens if t.name == session.SESSION_NAME] == ["revoked"]


def test_only_local_paths_are_followed_after_sign_in() -> None:
    assert safe_next("/models/fraud?metric=auc") == "/models/fraud?metric=auc"
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "", None):
        assert safe_next(hostile) == "/models"
