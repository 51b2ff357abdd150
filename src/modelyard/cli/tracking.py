"""``modelyard experiments …``, ``runs …``, ``lineage`` and ``diff``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.table import Table

from modelyard.cli import output
from modelyard.cli.context import registry
from modelyard.cli.output import console, number, print_json
from modelyard.cli.paging import MaxResultsOpt, PageTokenOpt, print_page
from modelyard.domain.lineage import Lineage, VersionDiff
from modelyard.domain.paging import Page
from modelyard.domain.runs import Experiment, Run
from modelyard.errors import InvalidInput

experiments_app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs_app = typer.Typer(help="Experiment runs: params, metrics, data, code, environment.",
                       no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RefArg = Annotated[str, typer.Argument(help="A version: 3, production, @champion or latest.")]
RunIdArg = Annotated[str, typer.Argument(help="The run id (32 hex digits).")]


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
def list_experiments(ctx: typer.Context, json: JsonOpt = False,
                     max_results: MaxResultsOpt = None, page_token: PageTokenOpt = None) -> None:
    """List experiments with their run counts."""
    found = registry(ctx).list_experiments(max_results=max_results, page_token=page_token)
    print_page(ctx, found, json, _experiments_table)


def _experiments_table(found: Page[Experiment]) -> Table:
    table = Table()
    for column in ("name", "runs", "created", "description"):
        table.add_column(column)
    for e in found:
        table.add_row(e.name, str(e.run_count),
                      f"{e.created_at:%Y-%m-%d %H:%M:%S} {e.created_by}", e.description)
    return table


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option(help="Only runs of this experiment.")] = None,
    filter: Annotated[str | None, typer.Option(
        "--filter", help="e.g. \"metrics.auc >= 0.9 and params.lr = 0.1 and status = 'finished'\"",
    )] = None,
    json: JsonOpt = False,
    max_results: MaxResultsOpt = None,
    page_token: PageTokenOpt = None,
) -> None:
    """List runs, newest first, filtered with the same language as versions."""
    found = registry(ctx).list_runs(experiment=experiment, filter=filter,
                                    max_results=max_results, page_token=page_token)
    print_page(ctx, found, json, _runs_table)


def _runs_table(found: Page[Run]) -> Table:
    table = Table()
    table.add_column("run_id", no_wrap=True)
    for column in ("experiment", "name", "status", "metrics", "params", "started"):
        table.add_column(column, overflow="fold")
    for r in found:
        table.add_row(r.run_id, r.experiment, r.name, r.status, _kv(r.metrics), _kv(r.params),
                      f"{r.start_time:%Y-%m-%d %H:%M:%S} {r.created_by}")
    return table


@runs_app.command("show")
def show_run(ctx: typer.Context, run_id: RunIdArg, json: JsonOpt = False) -> None:
    """Show one run: params, metrics (last, min, max, points), tags, datasets, artifacts,
    git, environment."""
    reg = registry(ctx)
    run: Run = reg.get_run(run_id)
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
        ("params", _kv(run.params)), ("metrics", _metric_summary(reg, run)),
        ("tags", _kv(run.tags)),
        ("datasets", _datasets(run.datasets)), ("artifacts", artifacts or "-"),
        ("git", _git(run.git)),
        ("environment", f"Python {env.get('python')} on {env.get('platform')}, "
                        f"{len(env.get('packages') or {})} packages"),
    ]))


def _metric_summary(reg: Any, run: Run) -> str:
    """Per metric: last value, then min/max and the number of points when there are several."""
    lines = []
    for key in sorted(run.metrics):
        values = [p.value for p in reg.metric_history(run.run_id, key)]
        line = f"{key}={number(run.metrics[key])}"
        if len(values) > 1:
            line += f" (min {number(min(values))}, max {number(max(values))}, {len(values)} points)"
        lines.append(line)
    return "\n".join(lines) or "-"


@runs_app.command("metrics")
def run_metrics(
    ctx: typer.Context,
    run_id: RunIdArg,
    key: Annotated[str | None, typer.Argument(
        help="Only this metric [default: every metric of the run].")] = None,
    json: JsonOpt = False,
) -> None:
    """Every logged point of a run's metrics: step, value and time."""
    reg = registry(ctx)
    keys = [key] if key is not None else sorted(reg.get_run(run_id).metrics)
    points = [p for k in keys for p in reg.metric_history(run_id, k)]
    if json:
        print_json([p.to_dict() for p in points])
        return
    table = Table(title=f"metrics of run {run_id}")
    for column in ("metric", "step", "value", "time"):
        table.add_column(column, justify="right" if column in ("step", "value") else "left")
    for p in points:
        table.add_row(p.key, str(p.step), number(p.value), f"{p.timestamp:%Y-%m-%d %H:%M:%S}")
    console.print(table)


@runs_app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(
        metavar="RUN_ID...", help="Two or more run ids to put side by side.")],
    json: JsonOpt = False,
) -> None:
    """Params and latest metrics of runs side by side; rows that differ are marked."""
    if len(run_ids) < 2:
        raise InvalidInput("compare needs at least two runs",
                           hint="modelyard runs compare RUN_ID RUN_ID…")
    reg = registry(ctx)
    runs = [reg.get_run(r) for r in run_ids]
    rows = compare(runs)
    if json:
        print_json({"runs": [r.run_id for r in runs], "rows": rows})
        return
    table = Table(title="runs compared (≠ marks a difference)")
    table.add_column("", no_wrap=True)
    table.add_column("field", no_wrap=True)
    for r in runs:
        table.add_column(f"{r.run_id[:8]} {r.name}".strip(), overflow="fold")
    for row in rows:
        cells = ["-" if v is None else number(v) for v in row["values"]]
        table.add_row("≠" if row["different"] else "", row["field"], *cells,
                      style="bold yellow" if row["different"] else None)
    console.print(table)


def compare(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per param and metric: each run's value and whether they differ."""
    rows = []
    for section in ("params", "metrics"):
        keys = sorted({k for r in runs for k in getattr(r, section)})
        for key in keys:
            values = [getattr(r, section).get(key) for r in runs]
            rows.append({"field": f"{section}.{key}", "values": values,
                         "different": len({repr(v) for v in values}) > 1})
    return rows


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
