"""Routes generated from the registry API's listing: one per operation, none written by hand.

For each served operation (``wire.routes``) a pydantic model of its arguments is made from
its signature; the endpoint authenticates the caller, builds the registry as that principal
and calls the operation, so permissions, governance and auditing are the same code as in
the embedded registry. Results are encoded by the entity codec.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, create_model

from modelyard.domain.codec import encode, wire_type
from modelyard.domain.principal import Principal
from modelyard.errors import PermissionDenied, Unauthenticated
from modelyard.server.auth import audit_refusal, principal_of
from modelyard.services.registry import Registry, RegistryApi
from modelyard.wire.routes import Route, route_of, served


class RecordResponse(JSONResponse):
    """JSON as the codec means it: nan and inf metrics as the constants ``json.dumps``
    writes (and ``json.loads`` reads), where starlette's strict encoding would fail."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def add_routes(api: APIRouter) -> None:
    """One route per served operation, added to ``api`` (the app's own router: an included
    router would be matched route by route twice per request, before and after it is
    selected)."""
    for op in RegistryApi.operations().values():
        if served(op.method):
            _add(api, route_of(op.method))


def _arguments_model(route: Route) -> type[BaseModel]:
    fields: dict[str, Any] = {
        p.name: (p.annotation, ... if p.default is inspect.Parameter.empty else p.default)
        for p in route.params}
    name = "".join(part.title() for part in route.operation.split("_"))
    return create_model(f"{name}Arguments", __config__=ConfigDict(extra="forbid"), **fields)


def _add(api: APIRouter, route: Route) -> None:
    model = _arguments_model(route)
    source = Query() if route.method == "GET" else Body()

    def endpoint(request: Request, arguments: Any) -> RecordResponse:
        backend = request.app.state.backend
        principal: Principal | None = None
        try:
            principal = principal_of(request, backend.db)
            registry = Registry(backend.db, backend.store, principal=principal)
            call = getattr(registry, route.operation)
            result = call(**{f: getattr(arguments, f) for f in model.model_fields})
        except (Unauthenticated, PermissionDenied) as refused:
            if route.method == "POST":
                audit_refusal(backend.db, refused, route.operation, principal)
            raise
        return RecordResponse(encode(result))

    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=Request),
        inspect.Parameter("arguments", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=Annotated[model, source]),
    ])
    api.add_api_route(route.path, endpoint, methods=[route.method], summary=route.summary,
                      operation_id=route.operation, tags=[route.permission.value],
                      response_class=RecordResponse, response_model=wire_type(route.returns),
                      description=f"Needs the **{route.permission}** permission.")
