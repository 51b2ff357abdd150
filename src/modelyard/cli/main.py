"""``modelyard``: the command line. Thin: parse, call the registry, print.

Errors from the registry become one line on stderr (JSON with ``--json``) and exit code 1
(2 for usage errors), never a traceback unless ``--debug``. Commands are imported only when
they run (see ``cli/lazy.py``), so ``--help`` and simple reads start fast.
"""

from __future__ import annotations

import gc
import sys
from typing import Annotated, Any

import typer
from typer import _click as click  # typer vendors click: its types, not the package's

from modelyard.cli import lazy
from modelyard.cli.context import CliState
from modelyard.config import Settings
from modelyard.errors import ModelyardError


class _Group(lazy.SuggestingGroup):
    """The root: lazy commands, and every error turned into one readable message."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = [n for n in super().list_commands(ctx) if n not in lazy.COMMANDS]
        return [*lazy.COMMANDS, *eager]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in lazy.COMMANDS:
            return super().get_command(ctx, cmd_name)
        self.commands[cmd_name] = lazy.load(cmd_name)
        return self.commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, entry.summary) for name, entry in lazy.COMMANDS.items()]
        rows += [(name, cmd.get_short_help_str()) for name, cmd in self.commands.items()
                 if name not in lazy.COMMANDS and not cmd.hidden]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["modelyard.json"] = "--json" in args
        ctx.meta["modelyard.debug"] = "--debug" in args[: _first_command(args)]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            if ctx.meta.get("modelyard.debug"):
                raise
            report_error(exc, as_json=bool(ctx.meta.get("modelyard.json")))
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a bug or an unexpected system error: say so, briefly
            if ctx.meta.get("modelyard.debug"):
                raise
            report_error(ModelyardError(
                f"unexpected {type(exc).__name__}: {exc}",
                hint="run again with 'modelyard --debug …' for the traceback, and report it"),
                as_json=bool(ctx.meta.get("modelyard.json")))
            raise typer.Exit(1) from None


def _first_command(args: list[str]) -> int:
    """Index of the first word that names a command (global options come before it)."""
    for i, arg in enumerate(args):
        if arg in lazy.COMMANDS:
            return i
    return len(args)


def report_error(exc: ModelyardError, *, as_json: bool) -> None:
    """One line on stderr (plus the hint), Rich markup escaped; or the JSON error body."""
    if as_json:
        import json

        sys.stderr.write(json.dumps(exc.to_dict(), default=str) + "\n")
        return
    from rich.markup import escape

    from modelyard.cli.output import err_console

    err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False,
                      soft_wrap=True)
    if exc.hint:
        err_console.print(f"hint: {escape(exc.hint)}", highlight=False, soft_wrap=True)


app = typer.Typer(
    cls=_Group,
    name="modelyard",
    help="Modelyard: a model registry with built-in data versioning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: fast, and readable when piped
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    registry: Annotated[str | None, typer.Option(
        "--registry", envvar="MODELYARD_REGISTRY_URI", metavar="URL",
        help="Metadata database (sqlite:///PATH, postgresql://…) or a Modelyard server"
             " (http(s)://…, with --token) [default: SQLite in --home]",
    )] = None,
    store: Annotated[str | None, typer.Option(
        "--store", envvar="MODELYARD_STORE_URI", metavar="URL",
        help="Object store: a folder, file://…, s3://, gs://, az://… [default: objects/ in"
             " --home]",
    )] = None,
    user: Annotated[str | None, typer.Option(
        "--user", envvar="MODELYARD_USER", metavar="NAME",
        help="Acting user of an embedded registry (a server takes it from the token)"
             " [default: the OS user]",
    )] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="MODELYARD_TOKEN", metavar="TOKEN", show_default=False,
        help="Bearer token for a server --registry (prefer the variable: a command line is"
             " visible to others on this machine)",
    )] = None,
    home: Annotated[str | None, typer.Option(
        "--home", envvar="MODELYARD_HOME", metavar="DIR",
        help="Folder of the embedded registry [default: ~/.modelyard]",
    )] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the full traceback of an error (for bug reports).",
    )] = False,
) -> None:
    ctx.meta["modelyard.debug"] = debug
    state = CliState(Settings.resolve(registry, store, user, home), token)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main() -> None:
    # A command is a short process that may build hundreds of thousands of objects (a
    # 70,000-file manifest, a page of 10,000 versions) and frees them by exiting: the
    # default thresholds rescan all of them in full collections several times over
    # (a tenth of a re-add's time). Cycles are still collected, just in larger steps.
    gc.set_threshold(100_000, 20, 100)
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
