"""Each registry operation's route, derived from its signature: one rule for both sides.

``/api/v1/<operation-name>``; a read whose arguments are all scalars is a ``GET`` with them
in the query string (cacheable, safe to retry), anything else (and every change) a ``POST``
with a JSON body.
The content plane's operations have no route: the client runs them on its own side.
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Union, get_args, get_origin

from modelyard.domain.principal import Permission
from modelyard.services.operations import OPERATIONS

PREFIX = "/api/v1"
CLIENT_SIDE = frozenset({"Files"})  # use-case classes whose operations run on the caller's side
# Operations that name files on the server's disk have no route: a remote caller never
# makes the server read or write a path (a checkpoint is signed where its key lives).
SERVER_ONLY = frozenset({"audit_checkpoint"})
_SCALARS = (str, int, float, bool, type(None), datetime)


@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any  # as sent on the wire (Iterable and Mapping become list and dict)
    default: Any  # inspect.Parameter.empty when required


@dataclass(frozen=True)
class Route:
    operation: str
    method: str  # "GET" or "POST"
    path: str
    params: tuple[Param, ...]
    returns: Any
    permission: Permission
    summary: str


@cache
def route_of(function: Callable[..., Any]) -> Route:
    """The route of an operation method (as declared on its use-case class)."""
    target = inspect.unwrap(function)
    hints = typing.get_type_hints(target)
    params = tuple(
        Param(p.name, _wire_type(hints[p.name]), p.default)
        for p in list(inspect.signature(target).parameters.values())[1:]
        if not _is_callable(hints[p.name]) and not _names_a_server_path(hints[p.name], p))
    declared = OPERATIONS[target.__name__]
    scalar = all(_is_scalar(p.annotation) for p in params)
    method = "GET" if not declared.changes and scalar else "POST"
    return Route(target.__name__, method, f"{PREFIX}/{target.__name__.replace('_', '-')}",
                 params, hints.get("return"), declared.permission, declared.summary)


def client_side(function: Callable[..., Any]) -> bool:
    """Whether an operation runs on the caller's side (the content plane)."""
    return inspect.unwrap(function).__qualname__.split(".")[0] in CLIENT_SIDE


def served(function: Callable[..., Any]) -> bool:
    """Whether an operation has a route (it runs on the server's side)."""
    return not client_side(function) and inspect.unwrap(function).__name__ not in SERVER_ONLY


def _names_a_server_path(annotation: Any, param: inspect.Parameter) -> bool:
    """An optional argument naming a file (``repair_from``, a public key file) is left off
    the route; a required one would make the operation server-only."""
    paths = any(get_origin(m) is os.PathLike or m is os.PathLike for m in _members(annotation))
    return param.default is not inspect.Parameter.empty and (
        paths or param.name in {"repair_from"})


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _is_scalar(annotation: Any) -> bool:
    return all(m in _SCALARS or _is_str_enum(m) for m in _members(annotation))


def _is_str_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, str)


def _is_callable(annotation: Any) -> bool:
    return any(get_origin(m) is Callable or m is Callable for m in _members(annotation))


def _wire_type(annotation: Any) -> Any:
    """Iterables travel as JSON arrays and mappings as objects."""
    members = tuple(_wire_member(m) for m in _members(annotation))
    return members[0] if len(members) == 1 else Union[members]  # noqa: UP007


def _wire_member(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Iterable, list):
        args = get_args(tp)
        return list.__class_getitem__(_wire_type(args[0]) if args else Any)
    if origin is Mapping:
        return dict.__class_getitem__(get_args(tp))
    return tp
