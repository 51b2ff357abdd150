"""The operation table: every public use case, once, with the permission it needs.

``@operation(Permission.X)`` on a use-case method records it here and checks the caller's
principal before the method runs, so permissions are enforced in one place for every face
(Python, CLI, and later REST routes generated from this table). A test keeps every public
method of the registry in the table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from modelyard.domain.principal import Permission, Principal


class _RunsAsPrincipal(Protocol):
    @property
    def principal(self) -> Principal: ...


@dataclass(frozen=True)
class Operation:
    name: str  # the method name, as the Python API spells it
    part: str  # the use-case class that defines it
    permission: Permission
    summary: str  # the first line of the docstring
    changes: bool  # whether it changes state (a server never serves it as a GET)


OPERATIONS: dict[str, Operation] = {}
F = TypeVar("F", bound=Callable[..., Any])


def operation(permission: Permission, *, changes: bool | None = None) -> Callable[[F], F]:
    """Declare a use-case method as an operation needing ``permission``. ``changes``: by
    default, whatever needs more than READ changes state; say so for a READ that does
    (a user managing their own tokens)."""

    def declare(method: F) -> F:
        name = method.__name__
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name!r} is declared twice")
        doc = (method.__doc__ or "").strip().splitlines()
        part = method.__qualname__.split(".")[0]
        OPERATIONS[name] = Operation(
            name, part, permission, doc[0] if doc else "",
            permission is not Permission.READ if changes is None else changes)
        what = name.replace("_", " ")

        @functools.wraps(method)
        def checked(self: _RunsAsPrincipal, *args: Any, **kwargs: Any) -> Any:
            self.principal.require(permission, what)
            return method(self, *args, **kwargs)

        return cast(F, checked)

    return declare
