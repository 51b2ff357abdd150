"""The command index: every top-level command, where it lives, and its one-line summary.

The root group imports a command's module only when that command runs (or its own
``--help`` is asked for), so ``modelyard --help`` never pays for Rich, SQLAlchemy or fsspec.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click as click  # typer vendors click: its types, not the package's


@dataclass(frozen=True)
class Entry:
    module: str  # under modelyard.cli
    attribute: str  # a typer.Typer (a group) or a command function
    summary: str


COMMANDS: dict[str, Entry] = {
    "register": Entry("versions", "register", "Register a file or directory as the next version."),
    "download": Entry("versions", "download", "Download a version or a run artifact, verified."),
    "tag": Entry("versions", "tag", "Set tags on a model or on one version."),
    "describe": Entry("versions", "describe", "Set the description of a model or a version."),
    "verify": Entry("versions", "verify", "Re-hash every stored object; name what is damaged."),
    "cleanup": Entry("cleanup", "cleanup", "Remove temporary files left by killed writers."),
    "storage": Entry("storage", "app", "Store statistics: logical vs stored bytes (dedup)."),
    "transition": Entry("lifecycle", "transition", "Move a version to another stage."),
    "rollback": Entry("lifecycle", "rollback", "Restore the previous production version."),
    "history": Entry("lifecycle", "history", "Stage and alias changes of a model."),
    "request": Entry("governance", "request", "Request production for a version."),
    "approve": Entry("governance", "approve", "Approve a promotion request."),
    "reject": Entry("governance", "reject", "Reject a promotion request."),
    "cancel": Entry("governance", "cancel", "Withdraw your own pending request."),
    "audit": Entry("governance", "audit", "The audit log (every change, hash-chained)."),
    "dossier": Entry("governance", "dossier", "Everything that justified a promotion, as JSON."),
    "lineage": Entry("tracking", "lineage", "What produced a version, and what derives from it."),
    "diff": Entry("tracking", "diff", "How one version differs from another."),
    "models": Entry("models", "app", "List, show, create and delete registered models."),
    "versions": Entry("versions", "app", "List, show, search and delete model versions."),
    "alias": Entry("lifecycle", "alias_app", "Named pointers to versions (champion…)."),
    "db": Entry("lifecycle", "db_app", "The metadata database schema."),
    "policy": Entry("governance", "policy_app", "Per-model approval policies."),
    "requests": Entry("governance", "requests_app", "Promotion requests and their decisions."),
    "experiments": Entry("tracking", "experiments_app", "Experiments: named groups of runs."),
    "runs": Entry("tracking", "runs_app", "Experiment runs: params, metrics, compare."),
    "data": Entry("data", "app", "Version data with git (pointer files, cache, remotes)."),
}


def load(name: str) -> click.Command:
    """Import the command ``name`` and build its click command."""
    entry = COMMANDS[name]
    target: Any = getattr(importlib.import_module(f"modelyard.cli.{entry.module}"),
                          entry.attribute)
    if isinstance(target, typer.Typer):
        _suggesting(target)
        command: click.Command = typer.main.get_group(target)
    else:
        holder = typer.Typer(rich_markup_mode=None, add_completion=False)
        holder.command(name)(target)
        command = typer.main.get_command(holder)
    command.name = name
    polish(command)
    return command


_STANDARD_HELP = {  # one sentence for the arguments every model command shares
    "name": "The model's name (see 'modelyard models list').",
    "alias": "An alias name, e.g. champion (letters first; not latest, a stage or v<digits>).",
}


def polish(command: click.Command) -> None:
    """Metavars people read (``NAME``, not ``{name}`` or ``<str>``), on the whole tree."""
    for param in command.params:
        if not getattr(param, "help", None) and param.name in _STANDARD_HELP:
            param.help = _STANDARD_HELP[param.name]  # type: ignore[attr-defined]
        descriptor = getattr(param, "type_descriptor", None)
        if param.metavar is not None or getattr(param, "is_flag", False) or (
                descriptor is not None and descriptor.is_choice):
            continue
        param.metavar = (param.name or "value").upper() + ("..." if param.nargs != 1 else "")
    if isinstance(command, typer.core.TyperGroup):
        for sub in command.commands.values():
            polish(sub)


class SuggestingGroup(typer.core.TyperGroup):
    """A group whose 'No such command' names the closest commands."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from modelyard.domain.suggest import did_you_mean

            hint = did_you_mean(name, self.list_commands(ctx))
            ctx.fail(f"No such command {name!r}." + (f" {hint[0].upper()}{hint[1:]}"
                                                       if hint else ""))
        return super().resolve_command(ctx, args)


def _suggesting(app: typer.Typer) -> None:
    app.rich_markup_mode = None  # plain click help: fast, no '<bool>', readable when piped
    if (app.registered_groups or app.registered_commands) and (
            app.info.cls is None or app.info.cls is typer.core.TyperGroup):
        app.info.cls = SuggestingGroup
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _suggesting(group.typer_instance)
