"""``modelyard experiments …``, ``runs …``, ``lineage`` and ``diff``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.table import Table

from modelyard.cli import output
from modelyard.cli.context import registry
from modelyard.cli.output import console, print_json
from modelyard.domain.lineage import Lineage, VersionDiff
from modelyard.domain.runs import Run

experiments_app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs_app = typer.Typer(help="Experiment runs: params, metrics, data, code, environment.",
                       no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RefArg = Annotated[str, typer.Argument(help="A version: 3, production, @champion or latest.")]


def _kv(mapping: dict[str, Any]) -> str:
    return output._kv(mapping) or "-"


def _details(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    table = Table(show_header=False, title=title)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    return table


def _datasets(items: Iterable[dict[str, Any]]) -> str:
    return "\n".join(
        f"{d['digest'][:19]} {d.get('source') or ''}"
        + (f" (datasets:/{d['name']}/{d['version']})" if d.get("name") else "")
        for d in items
    ) or "-"


def _git(git: dict[str, Any] | None) -> str:
    if not git or not git.get("commit"):
        return "-"
    return f"{git['commit']}{' (dirty)' if git.get('dirty') else ''} in {git.get('repo')}"


@experiments_app.command("list")
def list_experiments(ctx: typer.Context, json: JsonOpt = False) -> None:
    """List experiments with their run counts."""
    found = registry(ctx).list_experiments()
    if json:
        print_json([e.to_dict() for e in found])
        return
    table = Table()
    for column in ("name", "runs", "created", "description"):
        table.add_column(column)
    for e in found:
        table.add_row(e.name, str(e.run_count),
                      f"{e.created_at:%Y-%m-%d %H:%M:%S} {e.created_by}", e.description)
    console.print(table)


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option(help="Only runs of this experiment.")] = None,
    filter: Annotated[str | None, typer.Option(
        "--filter", help="e.g. \"metrics.auc >= 0.9 and params.lr = 0.1 and status = 'finished'\"",
    )] = None,
    json: JsonOpt = False,
) -> None:
    """List runs, newest first, filtered with the same language as versions."""
    found = registry(ctx).list_runs(experiment=experiment, filter=filter)
    if json:
        print_json([r.to_dict() for r in found])
        return
    table = Table()
    table.add_column("run_id", no_wrap=True)
    for column in ("experiment", "name", "status", "metrics", "params", "started"):
        table.add_column(column, overflow="fold")
    for r in found:
        table.add_row(r.run_id, r.experiment, r.name, r.status, _kv(r.metrics), _kv(r.params),
                      f"{r.start_time:%Y-%m-%d %H:%M:%S} {r.created_by}")
    console.print(table)


@runs_app.command("show")
def show_run(ctx: typer.Context,
             run_id: Annotated[str, typer.Argument(help="The run id (32 hex digits).")],
             json: JsonOpt = False) -> None:
    """Show one run: params, latest metrics, tags, datasets, artifacts, git, environment."""
    run: Run = registry(ctx).get_run(run_id)
    if json:
        print_json(run.to_dict())
        return
    env = run.environment
    artifacts = "\n".join(f"runs:/{run.run_id}/{a.path} {a.digest[:19]}"
                          + (f" [{a.flavor}]" if a.flavor else "") for a in run.artifacts)
    console.print(_details(f"run {run.run_id}", [
        ("experiment", run.experiment), ("name", run.name), ("status", run.status),
        ("started", f"{run.start_time:%Y-%m-%d %H:%M:%S} by {run.created_by}"),
        ("ended", f"{run.end_time:%Y-%m-%d %H:%M:%S}" if run.end_time else "-"),
        ("params", _kv(run.params)), ("metrics", _kv(run.metrics)), ("tags", _kv(run.tags)),
        ("datasets", _datasets(run.datasets)), ("artifacts", artifacts or "-"),
        ("git", _git(run.git)),
        ("environment", f"Python {env.get('python')} on {env.get('platform')}, "
                        f"{len(env.get('packages') or {})} packages"),
    ]))


def lineage(ctx: typer.Context,
            name: Annotated[str, typer.Argument(help="Model name.")], version: RefArg,
            json: JsonOpt = False) -> None:
    """Show what produced a version: run, experiment, params, metrics, data, code,
    environment, parent, descendants and the model's flavor and signature."""
    found: Lineage = registry(ctx).lineage(name, version)
    if json:
        print_json(found.to_dict())
        return
    run, env, model = found.run or {}, found.environment or {}, found.model or {}
    parent = found.parent
    console.print(_details(f"lineage of models:/{found.name}/{found.version}", [
        ("digest", found.digest),
        ("run", f"{run['run_id']} ({run['name']}, {run['status']})" if run else "-"),
        ("experiment", found.experiment or "-"),
        ("params", _kv(found.params)), ("metrics", _kv(found.metrics)),
        ("datasets", _datasets(found.datasets)), ("git", _git(found.git)),
        ("environment", f"Python {env.get('python')} on {env.get('platform')}, "
                        f"{env.get('package_count')} packages" if env else "-"),
        ("parent", f"models:/{parent['name']}/{parent['version']}" if parent else "-"),
        ("descendants", ", ".join(f"models:/{d['name']}/{d['version']}"
                                  for d in found.descendants) or "-"),
        ("flavor", str(model.get("flavor") or "-")),
        ("signature", str(model.get("signature") or "-")),
    ]))


def _section(title: str, section: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for kind in ("added", "removed", "changed"):
        items = section.get(kind) or {}
        if isinstance(items, dict):
            for key, value in items.items():
                shown = (f"{value['from']} → {value['to']}"
                         + (f" ({value['delta']:+g})" if "delta" in value else "")
                         if kind == "changed" else str(value))
                rows.append((title, f"{kind} {key}: {shown}"))
        else:
            rows.extend((title, f"{kind} {item}") for item in items)
    return rows


def diff(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Model name.")],
         v1: RefArg, v2: RefArg, json: JsonOpt = False) -> None:
    """Explain how V2 differs from V1: params, metrics with deltas, datasets, code commit,
    packages and files (by digest)."""
    found: VersionDiff = registry(ctx).diff(name, v1, v2)
    if json:
        print_json(found.to_dict())
        return
    datasets = {"added": [d["digest"] for d in found.datasets["added"]],
                "removed": [d["digest"] for d in found.datasets["removed"]]}
    code = found.code
    rows = [
        ("content", "identical" if found.identical_content
         else f"{found.from_digest[:19]} → {found.to_digest[:19]}"),
        ("code", f"{code['from']} → {code['to']}" if code["changed"] else "unchanged"),
        *_section("params", found.params), *_section("metrics", found.metrics),
        *_section("datasets", datasets), *_section("packages", found.packages),
        *_section("files", found.files),
    ]
    console.print(_details(f"{found.name}: version {found.from_version} → {found.to_version}",
                           rows))


def add_top_level(app: typer.Typer) -> None:
    for command in (lineage, diff):
        app.command()(command)
