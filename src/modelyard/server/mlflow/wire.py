"""The MLflow wire: how a request's fields arrive, how errors and records go back.

GET requests carry their fields in the query string (a repeated key is a list), every
other method in a JSON body. Each endpoint runs as the principal of the bearer token
(``MLFLOW_TRACKING_TOKEN``) through a ``Registry`` built per request, so permissions,
governance and the audit log are the embedded registry's own; this module only converts.
Errors leave as MLflow's ``{"error_code", "message"}`` with the status MLflow's client
expects for that code (it keys on ``RESOURCE_ALREADY_EXISTS`` and ``ENDPOINT_NOT_FOUND``,
and retries 500s, so nothing a caller can fix is ever a 500).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from modelyard.domain.principal import Principal
from modelyard.errors import (
    AlreadyExists,
    ApprovalRequired,
    InvalidInput,
    InvalidTransition,
    ModelyardError,
    NotFound,
    PermissionDenied,
    StorageUnavailable,
    Unauthenticated,
)
from modelyard.server.auth import audit_refusal, principal_of
from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore

log = logging.getLogger("modelyard.server.mlflow")

API_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")

_CODES: tuple[tuple[type[ModelyardError], str, int], ...] = (
    (NotFound, "RESOURCE_DOES_NOT_EXIST", 404),
    (AlreadyExists, "RESOURCE_ALREADY_EXISTS", 400),
    (InvalidInput, "INVALID_PARAMETER_VALUE", 400),
    (InvalidTransition, "RESOURCE_CONFLICT", 409),
    # What Databricks answers a transition the caller may only request: the message names
    # the ``modelyard request`` that asks for it.
    (ApprovalRequired, "PERMISSION_DENIED", 403),
    (PermissionDenied, "PERMISSION_DENIED", 403),
    (Unauthenticated, "UNAUTHENTICATED", 401),
    (StorageUnavailable, "TEMPORARILY_UNAVAILABLE", 503),
)


class MlflowError(Exception):
    """An MLflow-shaped refusal with no Modelyard class: an unknown endpoint, or an MLflow
    concept the registry does not have (said plainly rather than faked)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def response(self) -> JSONResponse:
        return error_response(self.code, self.message, self.status)


def unsupported(what: str, hint: str) -> MlflowError:
    """``NOT_IMPLEMENTED`` (501, which the client does not retry) for ``what``."""
    return MlflowError("NOT_IMPLEMENTED", f"Modelyard does not support {what}: {hint}", 501)


def endpoint_not_found(request: Request) -> MlflowError:
    return MlflowError("ENDPOINT_NOT_FOUND",
                       f"no MLflow endpoint {request.method} {request.url.path} here", 404)


def error_response(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def translate(error: ModelyardError) -> JSONResponse:
    """A registry error as MLflow says it; the hint (``modelyard request …``) stays in the
    message, since MLflow's body has no field for it."""
    for cls, code, status in _CODES:
        if isinstance(error, cls):
            return error_response(code, str(error), status)
    return error_response("INTERNAL_ERROR", str(error), 500)


# -- request fields ------------------------------------------------------------------------

def _bad(key: str, expected: str, value: Any) -> InvalidInput:
    return InvalidInput(f"invalid value {str(value)[:80]!r} for parameter '{key}': "
                        f"expected {expected}")


@dataclass
class Call:
    """One request: its fields, path parameters and the token's registry."""

    request: Request
    fields: Mapping[str, Any]
    registry: Registry
    path: Mapping[str, str] = field(default_factory=dict)

    @property
    def store(self) -> ObjectStore:
        return self.registry.store

    @property
    def principal(self) -> Principal:
        return self.registry.principal

    def text(self, key: str, *, required: bool = False) -> str:
        """A string field ("" when absent, unless required)."""
        value = self.fields.get(key)
        if isinstance(value, list):  # a repeated query key: MLflow reads the first
            value = value[0] if value else None
        if value is None or value == "":
            if required:
                raise InvalidInput(f"missing value for required parameter '{key}'")
            return ""
        if not isinstance(value, str):
            raise _bad(key, "a string", value)
        return value

    def optional(self, key: str) -> str | None:
        return self.text(key) or None

    def texts(self, key: str) -> list[str]:
        value = self.fields.get(key)
        values = [] if value is None else value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            raise _bad(key, "a list of strings", value)
        return list(values)

    def number(self, key: str, default: int | None = None) -> int | None:
        """An integer field: a JSON number, or its decimal text (query strings, int64s)."""
        value = self.fields.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None or value == "":
            return default
        if isinstance(value, str) and value.lstrip("-").isdigit() and value.isascii():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _bad(key, "an integer", value)

    def flag(self, key: str) -> bool:
        value = self.fields.get(key)
        if isinstance(value, bool) or value is None:
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _bad(key, "true or false", value)

    def pairs(self, key: str) -> dict[str, str]:
        """``[{"key": …, "value": …}, …]`` (tags, params) as a mapping, in order."""
        items = self.fields.get(key) or []
        if not isinstance(items, list):
            raise _bad(key, "a list of {key, value} objects", items)
        out: dict[str, str] = {}
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not (
                    isinstance(item.get("value", ""), str)):
                raise _bad(key, "a list of {key, value} objects with string values", item)
            out[item["key"]] = item.get("value", "")
        return out

    def records(self, key: str) -> list[dict[str, Any]]:
        items = self.fields.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _bad(key, "a list of objects", items)
        return list(items)


# -- records out ---------------------------------------------------------------------------

def millis(moment: datetime | None) -> int | None:
    """MLflow's timestamps: int64 milliseconds since the epoch, as JSON numbers."""
    return None if moment is None else int(moment.timestamp() * 1000)


def key_values(mapping: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"key": k, "value": v if isinstance(v, str) else str(v)}
            for k, v in mapping.items()]


def compact(record: dict[str, Any]) -> dict[str, Any]:
    """Leave out unset fields, as a protobuf's JSON form does."""
    return {k: v for k, v in record.items() if v is not None}


# -- routes --------------------------------------------------------------------------------

Handler = Callable[[Call], "dict[str, Any] | Response | None"]


@dataclass
class Routes:
    """MLflow endpoints, each served under every prefix of its API (``/api`` and the
    ``/ajax-api`` twin the MLflow UI calls)."""

    prefixes: tuple[str, ...]
    entries: list[tuple[str, str, Handler]] = field(default_factory=list)

    def rpc(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            self.entries.append((method, path, handler))
            return handler
        return add

    def install(self, api: APIRouter) -> None:
        for method, path, handler in self.entries:
            for prefix in self.prefixes:
                api.add_api_route(prefix + path, _endpoint(handler), methods=[method],
                                  include_in_schema=False,
                                  name=f"mlflow.{handler.__name__}")


def _endpoint(handler: Handler) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            fields = await _fields(request)
        except ModelyardError as error:
            return translate(error)
        return await serve(request, handler.__name__,
                           lambda registry: handler(Call(request, fields, registry,
                                                         dict(request.path_params))))
    return endpoint


async def _fields(request: Request) -> Mapping[str, Any]:
    if request.method == "GET":
        fields: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key not in fields:
                fields[key] = value
            else:
                before = fields[key]
                fields[key] = [*before, value] if isinstance(before, list) else [before, value]
        return fields
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


async def serve(request: Request, operation: str,
                work: Callable[[Registry], dict[str, Any] | Response | None]) -> Response:
    """Run ``work`` with the token's registry in a worker thread and answer as MLflow
    does; a refused change (401/403) is audited like every other face's."""
    try:
        result = await anyio.to_thread.run_sync(_as_principal, request, operation, work)
    except MlflowError as error:
        return error.response()
    except ModelyardError as error:
        return translate(error)
    except Exception:
        log.exception("unexpected error serving %s", request.url.path)
        return error_response("INTERNAL_ERROR", "internal server error; the server log has "
                              "the details", 500)
    return result if isinstance(result, Response) else JSONResponse(result or {})


def _as_principal(request: Request, operation: str,
                  work: Callable[[Registry], dict[str, Any] | Response | None]
                  ) -> dict[str, Any] | Response | None:
    backend = request.app.state.backend
    principal: Principal | None = None
    try:
        principal = principal_of(request, backend.db)
        return work(Registry(backend.db, backend.store, principal=principal))
    except (Unauthenticated, PermissionDenied) as refused:
        if request.method != "GET":
            audit_refusal(backend.db, refused, f"mlflow.{operation}", principal)
        raise


def not_found_routes(api: APIRouter, prefixes: Iterable[str]) -> None:
    """``ENDPOINT_NOT_FOUND`` for any other path under the prefixes: the code MLflow's
    client falls back on (added last, so only unserved paths reach it)."""

    async def unknown(request: Request) -> Response:
        return endpoint_not_found(request).response()

    for prefix in prefixes:
        api.add_api_route(prefix + "/{rest:path}", unknown, include_in_schema=False,
                          methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
