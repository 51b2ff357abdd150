"""``modelyard import mlflow``: bring an MLflow registry over (``services/mlflow_import``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from modelyard.cli.context import registry
from modelyard.cli.output import console, err_console, interrupted, print_json

import_app = typer.Typer(help="Import models from another registry.", no_args_is_help=True)


@import_app.command("mlflow")
def import_mlflow(
    ctx: typer.Context,
    tracking_uri: Annotated[str, typer.Option(
        "--tracking-uri", envvar="MLFLOW_TRACKING_URI", metavar="URI",
        help="The MLflow tracking server, http(s)://HOST:PORT.")],
    models: Annotated[list[str] | None, typer.Option(
        "--models", metavar="NAME", help="Import only these registered models (repeat the "
        "option for several); default: all.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Report what would be copied; write nothing.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Copy MLflow's registered models, versions (content verified and stored by digest),
    source runs, tags, aliases, stages and descriptions. Running it again copies only
    what is new, so an interrupted import resumes. MLFLOW_TRACKING_TOKEN is sent if set."""
    import os

    from modelyard.services.mlflow_import import MlflowImport, MlflowSource

    reg = registry(ctx)
    source = MlflowSource(tracking_uri, token=os.environ.get("MLFLOW_TRACKING_TOKEN"))
    try:
        with _progress() as progress, interrupted(lambda: (
                "interrupted: the versions already copied are kept; run the same command "
                "again to copy the rest")):
            report = MlflowImport(reg, source).run(models or (), dry_run=dry_run,
                                                   progress=progress)
    finally:
        source.close()
    if json:
        print_json(report.to_dict())
        return
    verb = "would copy" if report.dry_run else "copied"
    if report.copied_nothing and not report.dry_run:
        console.print(f"nothing to copy: {report.already_imported} version(s) from "
                      f"{report.source} were imported before", highlight=False)
    else:
        console.print(
            f"{verb} {report.models} model(s), {report.versions} version(s), {report.runs} "
            f"run(s), {report.bytes:,} bytes from {report.source}; {report.already_imported}"
            f" version(s) imported before; {report.updates} update(s)", highlight=False)
    for entry in report.renumbered:
        console.print(f"MLflow {entry['name']} v{entry['mlflow_version']} is "
                      f"models:/{entry['name']}/{entry['version']} here", highlight=False)
    for entry in report.unmapped:
        console.print(f"not mapped: {entry['what']}: {entry['why']}", highlight=False,
                      soft_wrap=True)


@contextmanager
def _progress() -> Iterator[Callable[[int, int, str], None]]:
    """A Rich bar of versions on stderr; silent when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=err_console, transient=True, disable=not err_console.is_terminal)
    with bar:
        task = bar.add_task("importing", total=None)

        def show(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=f"importing {label}")
        yield show
