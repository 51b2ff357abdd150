"""The command index: every top-level command, where it lives, and its one-line summary.

The root group imports a command's module only when that command runs (or its own
``--help`` is asked for), so ``modelyard --help`` never pays for Rich, SQLAlchemy or fsspec.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click as click  # typer vendors click: its types, not the package's
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam, TypeDescriptor


@dataclass(frozen=True)
class Entry:
    module: str  # under modelyard.cli
    attribute: str  # a typer.Typer (a group) or a command function
    summary: str


COMMANDS: dict[str, Entry] = {
    "register": Entry("versions", "register", "Register a file or directory as the next version."),
    "download": Entry("versions", "download", "Download a version or a run artifact, verified."),
    "tag": Entry("versions", "tag", "Set or delete tags of a model or of one version."),
    "describe": Entry("versions", "describe", "Set the description of a model or a version."),
    "verify": Entry("versions", "verify", "Re-hash every stored object; name what is damaged."),
    "gc": Entry("gc", "gc", "Remove registry-store objects nothing references any more."),
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
    "models": Entry("models", "app", "List, show, create, rename and delete registered models."),
    "versions": Entry("versions", "app", "List, show, search and delete model versions."),
    "alias": Entry("lifecycle", "alias_app", "Named pointers to versions (champion…)."),
    "db": Entry("lifecycle", "db_app", "The metadata database schema."),
    "policy": Entry("governance", "policy_app", "Per-model approval policies."),
    "requests": Entry("governance", "requests_app", "Promotion requests and their decisions."),
    "experiments": Entry("tracking", "experiments_app", "Experiments: named groups of runs."),
    "runs": Entry("tracking", "runs_app", "Experiment runs: params, metrics, compare."),
    "data": Entry("data", "app", "Version data with git (pointer files, cache, remotes)."),
    "server": Entry("server", "server", "Serve the registry over HTTP (REST API, docs)."),
    "users": Entry("access", "users_app", "Users of a shared registry and their roles."),
    "tokens": Entry("access", "tokens_app", "Bearer tokens for the server (MODELYARD_TOKEN)."),
    "import": Entry("mlflow_import", "import_app", "Import models from MLflow (and their runs)."),
    "webhooks": Entry("webhooks", "webhooks_app", "Webhook subscriptions and their deliveries."),
    "events": Entry("webhooks", "events_app", "Deliver the registry's events to webhooks."),
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
    plain_arguments(command)
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


_BOOLEANS = {**dict.fromkeys(("1", "true", "t", "yes", "y", "on"), True),
             **dict.fromkeys(("0", "false", "f", "no", "n", "off"), False)}
_PLAIN_TYPES: dict[Any, tuple[Callable[[str], Any], str]] = {
    str: (str, "text"), int: (int, "integer"), float: (float, "number"),
    bool: (lambda text: _BOOLEANS[text.lower()], "boolean")}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the element type, is a list) of ``X``, ``X | None``, ``list[X]`` or ``list[X] | None``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) == 1 and type(None) in typing.get_args(annotation):
        return _unwrap(args[0])
    if typing.get_origin(annotation) is list and len(args) == 1:
        return args[0], True
    return annotation, False


@dataclass(frozen=True)
class _PlainRuntime(RuntimeParam):
    """Coerce a plain value without building a Pydantic adapter (its import is 0.1-0.2 s)."""

    convert: Callable[[str], Any]
    what: str
    is_list: bool
    parser: bool = False  # the parameter's own ``parser=``: it sees every value as given

    def _coerce_value(self, value: Any, param: Any, ctx: click.Context) -> Any:
        if self.is_list:
            return [self._one(item, param, ctx) for item in value]
        return self._one(value, param, ctx)

    def _one(self, value: Any, param: Any, ctx: click.Context) -> Any:
        if self.parser or (self.convert is not str and isinstance(value, str)):
            try:
                return self.convert(value if self.parser else value.strip())
            except (ValueError, KeyError):
                raise BadParameter(f"{value!r} is not a valid {self.what}.", ctx=ctx,
                                   param=param) from None
        return value


class _Argument(typer.core.TyperArgument):
    """An argument shown as ``NAME`` (not ``{NAME}``) in the usage line, without ``<str>``."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if not self.required and not name.startswith("["):
            name = f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return super().display_type_rich(ctx) if self.type_descriptor.is_choice else None


def plain_arguments(command: click.Command) -> None:
    """Show ``command``'s arguments as ``NAME`` in its usage line (see ``_Argument``)."""
    for param in command.params:
        if type(param) is typer.core.TyperArgument:
            param.__class__ = _Argument


def _runtime_param(descriptor: TypeDescriptor) -> RuntimeParam:
    """Typer's coercion for a parameter, without Pydantic for plain ``str``/``int``/… ones."""
    info = descriptor.parameter_info
    element, is_list = _unwrap(descriptor.annotation)
    if info.parser is not None and not descriptor.is_tuple:
        return _PlainRuntime(info, descriptor.annotation, info.parser, "value", is_list,
                             parser=True)
    plain = _PLAIN_TYPES.get(element)
    if plain is None or descriptor.is_choice or descriptor.is_ranged or descriptor.is_file \
            or descriptor.is_path:
        return _typer_runtime_param(descriptor)
    return _PlainRuntime(info, descriptor.annotation, *plain, is_list)


# Typer builds a Pydantic adapter for every parameter it coerces, even "--json" and the help
# option: importing Pydantic costs 0.1-0.2 s of each call. Plain types are coerced here.
_typer_runtime_param = typer.core.build_runtime_param  # type: ignore[attr-defined]
typer.core.build_runtime_param = _runtime_param  # type: ignore[attr-defined]


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
