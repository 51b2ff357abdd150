"""The remote face of the registry API: the same operations, sent to a Modelyard server.

``RemoteRegistry`` binds each operation of ``RegistryApi``'s one listing to an HTTP call
on the route both sides derive from its signature (``wire.routes``), so the methods,
arguments, return types and exception classes are the embedded registry's by
construction. The content plane's operations run here, on the caller's side, through the
same ``Files`` as embedded, moving bytes by digest with ``HttpContent``.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import types
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlencode

import httpx

from modelyard.client.http_content import HttpContent
from modelyard.domain.codec import decode, encode
from modelyard.domain.principal import Principal, Role
from modelyard.errors import InvalidInput, ModelyardError, StorageUnavailable, error_class_for
from modelyard.services.files import Files
from modelyard.services.registry import RegistryApi, _Op
from modelyard.wire.routes import client_side, route_of, served

TIMEOUT = httpx.Timeout(30.0, read=300.0)  # a verify or a large search may take a while


class RemoteRegistry(RegistryApi):
    """``modelyard.connect("http://host:8080", token=...)``: a registry on a server."""

    def __init__(self, url: str, *, token: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        token = token or os.environ.get("MODELYARD_TOKEN")
        if not token:
            raise InvalidInput(f"{url} needs a token", hint="pass token= or set MODELYARD_TOKEN")
        self.url = url.rstrip("/")
        # one pool with keep-alive; connection attempts are retried, requests are not
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT,
            transport=transport or httpx.HTTPTransport(retries=2))
        self._files = Files(self, HttpContent(self.http))
        self._principal: Principal | None = None

    @classmethod
    def over(cls, http: httpx.Client) -> RemoteRegistry:
        """A remote registry over an existing client (tests: FastAPI's TestClient)."""
        remote = cls.__new__(cls)
        remote.url, remote.http, remote._principal = str(http.base_url), http, None
        remote._files = Files(remote, HttpContent(http))
        return remote

    @property
    def principal(self) -> Principal:
        """Who the token stands for, as the server says (asked once)."""
        if self._principal is None:
            body = self._send("GET", "/api/v1/whoami", None)
            self._principal = Principal(body["user"], frozenset(Role(r) for r in body["roles"]))
        return self._principal

    def _bind(self, op: _Op[Any, ..., Any]) -> Callable[..., Any]:
        """The operation's call, made once per client (each ``remote.x`` looks it up)."""
        bound: dict[str, Callable[..., Any]] = self.__dict__.setdefault("_bound", {})
        call = bound.get(op.name)
        if call is None:
            call = bound[op.name] = self._make_call(op)
        return call

    def _make_call(self, op: _Op[Any, ..., Any]) -> Callable[..., Any]:
        if client_side(op.method):
            return types.MethodType(op.method, self._files)
        if not served(op.method):
            return functools.partial(_refused, op.name)
        route = route_of(op.method)
        signature = inspect.signature(inspect.unwrap(op.method))
        sent = frozenset(p.name for p in route.params)
        url = self._url(route.path)

        def call(*args: Any, **kwargs: Any) -> Any:
            given = signature.bind(None, *args, **kwargs).arguments
            given.pop(next(iter(signature.parameters)))  # self
            local_only = [n for n, v in given.items() if n not in sent and v is not None]
            if local_only:
                raise InvalidInput(f"{route.operation}: {', '.join(local_only)} cannot be "
                                   "used against a server", hint="run it on the server")
            body = self._send(route.method, url, {
                n: _wire_value(v) for n, v in given.items() if n in sent})
            return decode(route.returns, body) if route.returns is not None else None

        call.__name__ = call.__qualname__ = route.operation
        call.__doc__ = op.method.__doc__
        return call

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of a route, parsed once: httpx joining a relative path to the
        base URL, and a query given as a mapping, re-parse the whole URL on every request
        (a third of a call's CPU on this side)."""
        return httpx.URL(str(self.http.base_url).rstrip("/") + path)

    def _send(self, method: str, url: httpx.URL | str, arguments: dict[str, Any] | None
              ) -> Any:
        try:
            if method == "GET":
                query = urlencode([(k, _query_text(v)) for k, v in (arguments or {}).items()
                                   if v is not None])
                response = self.http.get(f"{url}?{query}" if query else url)
            else:
                # json.dumps, not httpx's strict encoder: NaN and infinite metrics travel as
                # the tokens the server's responses use too (and Python's json reads).
                response = self.http.post(url, content=json.dumps(arguments or {}),
                                          headers=_JSON_BODY)
        except httpx.TransportError as exc:
            raise StorageUnavailable(f"cannot reach the Modelyard server at {self.url}: {exc}",
                                     hint="check the URL and that the server is running"
                                     ) from exc
        if response.is_error:
            raise error_from(response)
        return response.json()

    def close(self) -> None:
        self.http.close()


_JSON_BODY = {"content-type": "application/json"}


def _query_text(value: Any) -> str:
    """A scalar as a query string writes it (booleans as httpx writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _refused(operation: str, *args: Any, **kwargs: Any) -> Any:
    raise InvalidInput(f"{operation} names files on the server's disk, so a server does not "
                       "serve it", hint="run it where the registry's database and key are: "
                       "modelyard --registry postgresql://… …")


def error_from(response: httpx.Response) -> ModelyardError:
    """The exception a server's error body names (the class its code maps to)."""
    try:
        error = response.json()["error"]
        cls = error_class_for(str(error["code"]))
        details = dict(error.get("details") or {})
        return cls(str(error["message"]), hint=error.get("hint"), **details)
    except (ValueError, KeyError, TypeError):
        return ModelyardError(f"the server answered {response.status_code} "
                              f"{response.reason_phrase}", status=response.status_code)


def _wire_value(value: Any) -> Any:
    """An argument as JSON (records through the codec; a query string gets text)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _wire_value(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [_wire_value(v) for v in value]
    return encode(value)
