"""Per-invocation state of the CLI: resolved settings and a lazily opened registry.

The registry is what ``modelyard.connect`` gives for ``--registry``: the embedded one for a
database URL, a server's (as the user of ``--token`` / ``MODELYARD_TOKEN``) for http(s)://,
with the same operations either way. The few commands that need the registry's own
database, store or files on this machine ask ``embedded``, which refuses a server in one
line with a hint, before any connection is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

import modelyard
from modelyard.config import Settings
from modelyard.errors import InvalidInput, Unauthenticated

if TYPE_CHECKING:  # imported on first use: `modelyard data …` never needs SQLAlchemy
    from modelyard.services.registry import Registry, RegistryApi


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


@dataclass
class CliState:
    settings: Settings
    token: str | None = field(default=None, repr=False)
    _registry: RegistryApi | None = field(default=None, repr=False)

    def registry(self) -> RegistryApi:
        if self._registry is None:
            s = self.settings
            if is_server(s.registry_uri) and not self.token:
                raise Unauthenticated(
                    f"{s.registry_uri} is a Modelyard server: it needs a token",
                    hint="set MODELYARD_TOKEN (or pass --token) to a token from 'modelyard "
                         "tokens create' or from your admin")
            self._registry = modelyard.connect(s.registry_uri, store=s.store_uri, user=s.user,
                                               home=s.home, token=self.token)
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def _state(ctx: typer.Context) -> CliState:
    state: CliState = ctx.find_root().obj
    return state


def registry(ctx: typer.Context) -> RegistryApi:
    return _state(ctx).registry()


def settings(ctx: typer.Context) -> Settings:
    return _state(ctx).settings


def on_server(ctx: typer.Context) -> bool:
    return is_server(settings(ctx).registry_uri)


def refuse_server(ctx: typer.Context, command: str, needs: str, hint: str | None = None
                  ) -> None:
    """One-line refusal of ``command`` when ``--registry`` names a server: it needs
    ``needs`` (the registry's database, store or a file), which only its host can reach."""
    uri = settings(ctx).registry_uri
    if is_server(uri):
        raise InvalidInput(
            f"'modelyard {command}' works on {needs} directly; {uri} is a server, which "
            "does not expose it",
            hint=hint or f"run it with the database's own URL, where it is reachable: "
                         f"modelyard --registry postgresql://… {command}")


def embedded(ctx: typer.Context, command: str, needs: str) -> Registry:
    """The embedded registry, for a command that reads its database or store directly."""
    from modelyard.services.registry import Registry

    refuse_server(ctx, command, needs)
    reg = registry(ctx)
    assert isinstance(reg, Registry)  # not a server: connect opened the database
    return reg


def store_url(ctx: typer.Context, given: str | None, command: str) -> str:
    """The store a store command works on: the one given, else the registry's ``--store``,
    which a server's registry does not have (its store is on the server's side)."""
    if given is not None:
        return given
    refuse_server(ctx, command, "the registry's object store",
                  hint=f"name the store: modelyard {command} s3://bucket/prefix (or a folder), "
                       "or run it on the server")
    return settings(ctx).store_uri
