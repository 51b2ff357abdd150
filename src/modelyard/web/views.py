"""What every page shares: the signed-in visit, forms, rendering, errors as pages.

A page handler asks for a ``Visit`` (``Depends(visit)`` for a read, ``Depends(acting)`` for
a form post, which also checks the CSRF token) and calls the operations of
``visit.registry``, the registry built for the session's principal. ``PageRoute`` turns
what they raise into pages: no session redirects to sign-in, a registry error becomes an
error page with the error's status, and a refused post (no permission, no session, a bad
CSRF token) is recorded in the audit log like a refused REST call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined

from modelyard.domain.principal import Permission, Principal
from modelyard.errors import InvalidInput, ModelyardError, PermissionDenied, Unauthenticated
from modelyard.server.auth import audit_refusal
from modelyard.services.access import authenticate, record_refusal
from modelyard.services.registry import Registry
from modelyard.storage.sql.database import Database
from modelyard.web import paths, session

T = TypeVar("T")
PAGE_SIZE = 50
MAX_FORM = 64 * 1024  # bytes of a posted form; every form here is a few fields
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
                               "object-src 'self'; frame-ancestors 'self'; form-action 'self'; "
                               "base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
NOTICES = {  # what a redirect after a successful post says (a key, never caller text)
    "approved": "Approved.",
    "applied": "Approved: the version is now in production.",
    "rejected": "Rejected.",
    "rolled-back": "Rolled back.",
    "signed-out": "Signed out.",
}


class SignInRequired(Exception):
    """No session, or one that no longer authenticates."""


class FormRefused(Exception):
    """A post without this session's CSRF token, or a body that is not a small form."""


@dataclass(frozen=True)
class Visit:
    """One request of a signed-in user: their principal and a registry acting as them."""

    request: Request
    principal: Principal
    registry: Registry
    session: str

    @property
    def user(self) -> str:
        return self.principal.user

    @property
    def csrf(self) -> str:
        return session.csrf_token(self.session)

    @property
    def db(self) -> Database:
        return self.registry.db

    def can(self, permission: Permission | str) -> bool:
        return self.principal.can(Permission(permission))

    @property
    def read_only(self) -> bool:
        return not self.can(Permission.CONTRIBUTE)


def visit(request: Request) -> Visit:
    """The signed-in visit, or ``SignInRequired``."""
    token = session.session_of(request)
    if token is None:
        raise SignInRequired
    backend = request.app.state.backend
    try:
        principal = authenticate(backend.db, token)
    except Unauthenticated:
        raise SignInRequired from None
    found = Visit(request, principal, Registry(backend.db, backend.store, principal=principal),
                  token)
    request.state.visit = found
    return found


async def form(request: Request) -> dict[str, str]:
    """The fields of a posted ``application/x-www-form-urlencoded`` body (first value of
    each); anything else is refused."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_FORM:
            raise FormRefused("the form is too large")
    if kind != "application/x-www-form-urlencoded":
        raise FormRefused("expected a form")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise FormRefused("the form could not be read") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


@dataclass(frozen=True)
class Posted:
    """A form post of a signed-in visit whose CSRF token checked out."""

    visit: Visit
    fields: dict[str, str]

    def get(self, name: str) -> str:
        return self.fields.get(name, "").strip()

    def act(self, operation: str, call: Callable[[], T]) -> T:
        """Run one registry operation; a refusal is audited (as the REST API does) and
        re-raised for the error page."""
        try:
            return call()
        except (Unauthenticated, PermissionDenied) as refused:
            audit_refusal(self.visit.db, refused, operation, self.visit.principal)
            raise


FormFields = Annotated[dict[str, str], Depends(form)]


def acting(request: Request, fields: FormFields) -> Posted:
    """A signed-in visit posting a form with its session's CSRF token."""
    found = visit(request)
    if not session.csrf_ok(found.session, fields.get("csrf")):
        record_refusal(found.db, operation=_operation_of(request), reason="bad csrf token",
                       user=found.user)
        raise FormRefused("this form is stale or did not come from this site")
    return Posted(found, fields)


SignedIn = Annotated[Visit, Depends(visit)]
Posting = Annotated[Posted, Depends(acting)]


def _operation_of(request: Request) -> str:
    return "web " + request.url.path


# -- rendering ---------------------------------------------------------------------------

def _number(value: Any) -> str:
    """Floats to 6 significant digits, like the CLI's tables; nothing as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _size(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


def _short(digest: str) -> str:
    return digest.removeprefix("blake3:")[:12]


def url(path: str, **query: Any) -> str:
    """``path`` with the query arguments that are set (None and "" are left out)."""
    kept = {k: v for k, v in query.items() if v is not None and v != ""}
    return path + ("?" + urlencode(kept) if kept else "")


ENV = Environment(loader=PackageLoader("modelyard.web", "templates"), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(number=_number, size=_size, time=_time, short=_short)
ENV.globals.update(url=url, paths=paths)


def render(request: Request, template: str, http_status: int = 200, **context: Any
           ) -> HTMLResponse:
    found = getattr(request.state, "visit", None)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    html = ENV.get_template(template).render(
        visit=found, notice=notice, path=request.url.path,
        current_page=request.query_params.get("page_token"), **context)
    return HTMLResponse(html, status_code=http_status, headers=SECURITY_HEADERS)


def redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303, headers={"cache-control": "no-store"})


def safe_next(target: str | None) -> str:
    """Only a path of this site (never ``//host`` or a scheme): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/models"
    return target


def error_page(request: Request, error: ModelyardError) -> HTMLResponse:
    return render(request, "error.html", http_status=error.http_status, error=error)


class PageRoute(APIRoute):
    """A page: what its handler or its dependencies raise becomes a page, never JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.method == "POST":
                    record_refusal(request.app.state.backend.db,
                                   operation=_operation_of(request), reason="no session")
                back = request.url.path + (f"?{request.url.query}" if request.url.query
                                           else "")
                return redirect(url("/login", next=back if request.method == "GET" else None))
            except FormRefused as refused:
                return error_page(request, PermissionDenied(str(refused), hint="reload the "
                                  "page and try again"))
            except ModelyardError as error:
                return error_page(request, error)
            except RequestValidationError as invalid:
                problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: "
                                     f"{e.get('msg')}" for e in invalid.errors())
                return error_page(request, InvalidInput(f"invalid request: {problems}"))

        return run


def page_router() -> APIRouter:
    return APIRouter(route_class=PageRoute, include_in_schema=False,
                     default_response_class=HTMLResponse)
