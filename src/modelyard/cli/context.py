"""Per-invocation state of the CLI: resolved settings and a lazily opened registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

import modelyard
from modelyard.config import Settings

if TYPE_CHECKING:  # imported on first use: `modelyard data …` never needs SQLAlchemy
    from modelyard.services.registry import Registry


@dataclass
class CliState:
    settings: Settings
    _registry: Registry | None = field(default=None, repr=False)

    def registry(self) -> Registry:
        if self._registry is None:
            s = self.settings
            self._registry = modelyard.open_embedded(s)
        return self._registry


def registry(ctx: typer.Context) -> Registry:
    state: CliState = ctx.find_root().obj
    return state.registry()


def settings(ctx: typer.Context) -> Settings:
    state: CliState = ctx.find_root().obj
    return state.settings
