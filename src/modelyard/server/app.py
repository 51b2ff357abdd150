"""The REST server: the registry's operations over HTTP, as the token's principal.

A process holds only a database pool and an object store handle; everything that matters
(users, tokens, versions, uploaded content) lives in the database or the store, so any
number of processes on any number of machines can serve one registry behind one address.
Transport and identity only: every rule stays in ``services/``.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from modelyard import __version__, web
from modelyard.config import Settings
from modelyard.errors import InvalidInput, ModelyardError, NotFound, StorageUnavailable
from modelyard.server import content_routes, mlflow, operation_routes
from modelyard.server.auth import principal_of
from modelyard.server.deliveries import delivering
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database

log = logging.getLogger("modelyard.server")


@dataclass(frozen=True)
class Backend:
    """What one server process shares between its requests."""

    db: Database
    store: ObjectStore


def create_app(registry_uri: str | None = None, store_uri: str | None = None) -> FastAPI:
    """The ASGI app over a registry (default: ``MODELYARD_*`` settings, then the embedded
    default, like every other face)."""
    settings = Settings.resolve(registry_uri, store_uri)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backend = Backend(Database(settings.registry_uri),
                                    ObjectStore(settings.store_uri, registry=True))
        with delivering(app.state.backend.db):
            yield
        app.state.backend.db.dispose()

    app = FastAPI(title="Modelyard", version=__version__, lifespan=lifespan,
                  description="Model registry with built-in data versioning: every operation "
                              "of the Python API, as the principal of the bearer token.")
    _install_error_bodies(app)

    @app.get("/healthz", tags=["server"], summary="Database and object store are reachable")
    def healthz(request: Request) -> dict[str, Any]:
        backend: Backend = request.app.state.backend
        with backend.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        backend.store.exists("blake3:" + "0" * 64)
        return {"status": "ok", "version": __version__, "pid": os.getpid()}

    @app.get("/api/v1/whoami", tags=["read"], summary="The user and roles of the token")
    def whoami(request: Request) -> dict[str, Any]:
        principal = principal_of(request, request.app.state.backend.db)
        return {"user": principal.user, "roles": sorted(principal.roles)}

    content_routes.add_routes(app.router)  # the content plane's few routes first
    operation_routes.add_routes(app.router)
    app.include_router(mlflow.router())  # MLflow's REST API, for the mlflow client
    app.include_router(web.router())  # the web UI, at /
    return app


def app_from_environment() -> FastAPI:
    """``uvicorn --factory modelyard.server.app:app_from_environment`` (what ``modelyard
    server`` runs in each worker): settings from ``MODELYARD_*`` variables.

    What the worker holds once the app is built (modules, routes, schemas: ~140,000
    objects the cycle collector tracks) is frozen out of the collector's sight: a full
    collection scanning them all took ~90 ms, and the younger generations' ones up to
    3 ms, stalls that landed on whichever requests were running. They live as long as the
    process, so nothing is lost by never scanning them (reference counting still frees
    anything dropped)."""
    app = create_app()
    gc.collect()
    gc.freeze()
    return app


def error_response(error: ModelyardError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.http_status)


def _install_error_bodies(app: FastAPI) -> None:
    """One error body everywhere: ``{"error": {"code", "message", "hint", "details"}}``."""

    @app.exception_handler(ModelyardError)
    async def modelyard_error(request: Request, exc: ModelyardError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))}
                    for e in exc.errors()]
        first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
        return error_response(InvalidInput(
            f"invalid request: {'.'.join(first['loc'])}: {first['msg']}",
            hint="see /docs for this operation's arguments", errors=problems))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound(f"no such endpoint: {request.url.path}",
                                           hint="see /docs for the API"))
        body = ModelyardError(str(exc.detail)).to_dict()
        body["error"]["code"] = "http_error"
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error serving %s", request.url.path)
        if _is_connection_error(exc):
            return error_response(StorageUnavailable("the registry's storage is unreachable",
                                                     hint="try again shortly"))
        return error_response(ModelyardError("internal server error",
                                             hint="the server log has the details"))


def _is_connection_error(exc: Exception) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError)
