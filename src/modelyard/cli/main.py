"""``modelyard``: the command line. Thin: parse, call the registry, print.

Errors from the registry become one line on stderr and exit code 1 (2 for usage errors),
never a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from modelyard.cli import cleanup, data, governance, lifecycle, models, tracking, versions
from modelyard.cli.context import CliState
from modelyard.cli.output import err_console
from modelyard.config import Settings
from modelyard.errors import ModelyardError


class _Group(TyperGroup):
    """Turns every ``ModelyardError`` raised below into a one-line message."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors its own click Context type
        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False,
                              markup=True, soft_wrap=True)
            if exc.hint:
                err_console.print(f"hint: {exc.hint}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    name="modelyard",
    help="Modelyard: a model registry with built-in data versioning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    registry: Annotated[str | None, typer.Option(
        "--registry", envvar="MODELYARD_REGISTRY_URI",
        help="Metadata database: sqlite:///PATH or postgresql://… [default: SQLite in --home]",
    )] = None,
    store: Annotated[str | None, typer.Option(
        "--store", envvar="MODELYARD_STORE_URI",
        help="Object store: a folder, file://…, s3://bucket/prefix [default: objects/ in --home]",
    )] = None,
    user: Annotated[str | None, typer.Option(
        "--user", envvar="MODELYARD_USER", help="Acting user [default: the OS user]",
    )] = None,
    home: Annotated[str | None, typer.Option(
        "--home", envvar="MODELYARD_HOME",
        help="Folder of the embedded registry [default: ~/.modelyard]",
    )] = None,
) -> None:
    ctx.obj = CliState(Settings.resolve(registry, store, user, home))


app.add_typer(models.app, name="models")
app.add_typer(versions.app, name="versions")
app.add_typer(lifecycle.alias_app, name="alias")
app.add_typer(lifecycle.db_app, name="db")
versions.add_top_level(app)
app.command()(cleanup.cleanup)
lifecycle.add_top_level(app)
app.add_typer(governance.policy_app, name="policy")
app.add_typer(governance.requests_app, name="requests")
governance.add_top_level(app)
app.add_typer(tracking.experiments_app, name="experiments")
app.add_typer(tracking.runs_app, name="runs")
tracking.add_top_level(app)
app.add_typer(data.app, name="data")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
