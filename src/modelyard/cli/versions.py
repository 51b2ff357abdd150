"""``modelyard register``, ``versions …``, ``download``, ``tag``, ``describe``, ``verify``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from modelyard.cli.context import refuse_server, registry
from modelyard.cli.output import (
    console,
    interrupted,
    print_json,
    transfer_progress,
    tree_size,
    verified_download,
    version_details,
    versions_table,
)
from modelyard.cli.paging import MaxResultsOpt, PageTokenOpt, print_page
from modelyard.cli.params import VersionArg
from modelyard.domain.names import parse_metric_pairs, parse_pairs
from modelyard.domain.runs import is_run_uri
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    pass

app = typer.Typer(help="List, show, search and delete model versions.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
FilterOpt = Annotated[str | None, typer.Option(
    "--filter", help="e.g. \"metrics.auc >= 0.9 and tags.team = 'risk'\"")]
DescendingOpt = Annotated[bool, typer.Option(
    "--descending", "--newest-first", help="Newest first (reverse name, version order).")]


@app.command("list")
def list_versions(ctx: typer.Context, name: str, filter: FilterOpt = None,
                  descending: DescendingOpt = False, json: JsonOpt = False,
                  max_results: MaxResultsOpt = None, page_token: PageTokenOpt = None) -> None:
    """List the versions of a model (oldest first unless --newest-first), optionally
    filtered."""
    found = registry(ctx).list_versions(name, filter=filter, descending=descending,
                                        max_results=max_results, page_token=page_token)
    print_page(ctx, found, json, lambda page: versions_table(page, title=name))


@app.command("search")
def search(ctx: typer.Context, filter: Annotated[str, typer.Argument(
        help="e.g. \"name = 'fraud' and metrics.auc >= 0.9\"")],
           descending: DescendingOpt = False, json: JsonOpt = False,
           max_results: MaxResultsOpt = None, page_token: PageTokenOpt = None) -> None:
    """Search versions of all models with the filter language, by (name, version)."""
    found = registry(ctx).search_versions(filter, descending=descending,
                                          max_results=max_results, page_token=page_token)
    print_page(ctx, found, json, versions_table)


@app.command("show")
def show(ctx: typer.Context, name: str,
         ref: Annotated[str, typer.Argument(help="3, production, @champion or latest")],
         json: JsonOpt = False,
         added: Annotated[bool, typer.Option(
             "--added", help="Also say how many stored bytes this version added (reads the "
                             "manifests of the earlier versions).")] = False) -> None:
    """Show one version."""
    reg = registry(ctx)
    found = reg.get_version(name, ref)
    extra = {"added_bytes": reg.added_bytes(name, found.version)} if added else {}
    if json:
        print_json({**found.to_dict(), **extra})
    else:
        console.print(version_details(found))
        if added:
            console.print(f"added to the store: {extra['added_bytes']:,} bytes "
                          f"of {found.size:,}", highlight=False)


@app.command("delete")
def delete(ctx: typer.Context, name: str, version: VersionArg) -> None:
    """Soft-delete a version; its number is never reused."""
    registry(ctx).delete_version(name, version)
    console.print(f"deleted version {version} of {name}")


def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name (created if missing).")],
    path: Annotated[str, typer.Argument(
        help="A model file or directory, or runs:/RUN_ID/PATH (a run's logged artifact).")],
    param: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    metric: Annotated[list[str] | None, typer.Option(help="KEY=NUMBER, repeatable.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    description: Annotated[str, typer.Option(help="What changed in this version.")] = "",
    alias: Annotated[list[str] | None, typer.Option(
        help="Point this alias here, repeatable.")] = None,
    run: Annotated[str | None, typer.Option(
        help="The run that produced it: its params, metrics, data, commit become lineage.")] = None,
    parent: Annotated[str | None, typer.Option(
        help="The version it derives from, NAME/VERSION (e.g. fine-tuned from).")] = None,
    dataset: Annotated[list[str] | None, typer.Option(
        "--dataset", metavar="PATH_OR_URI",
        help="Training data, repeatable: a path, a .yard pointer or datasets:/NAME/VERSION;"
             " its digest is recorded in the lineage.")] = None,
    json: JsonOpt = False,
) -> None:
    """Register a file or directory as the next version of NAME."""
    params = parse_pairs(param or [], "param")
    metrics = parse_metric_pairs(metric or [])
    tags = parse_pairs(tag or [], "tag", scalars=False)
    reg = registry(ctx)
    source = Path(path)
    if not is_run_uri(path) and not source.exists():
        raise InvalidInput(f"artifact path {path!r} does not exist")
    total = 0 if is_run_uri(path) else tree_size(source)
    stored = [0]

    def advance_and_count(n: int) -> None:
        stored[0] += n
        advance(n)

    with transfer_progress(f"storing {source.name}", total) as advance, interrupted(
            lambda: f"interrupted: no version of {name} was registered; {stored[0]:,} of"
                    f" {total:,} bytes had been copied into the store (kept, and reused by"
                    " the next register)"):
        version = reg.register(name, path, params=params, metrics=metrics, tags=tags,
                               description=description, aliases=alias or [], run=run,
                               parent=parent, datasets=dataset or [],
                               progress=advance_and_count)
    if json:
        print_json(version.to_dict())
    else:
        console.print(f"registered {version.uri} ({version.digest})")


def download(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(
        help="models:/NAME/3, models:/NAME/production, models:/NAME@alias or"
             " runs:/RUN_ID/PATH (a run's logged artifact)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Destination folder.")],
) -> None:
    """Download a version's (or a run's) artifact, verifying every byte against its digest."""
    reg = registry(ctx)
    size = (reg.run_artifact(uri)[1].size if is_run_uri(uri) else reg.get_version(uri).size)
    with interrupted(lambda: f"interrupted: nothing of {uri} was written to {output}"
                             " (partial files and folders it created were removed)"):
        verified_download(uri, size, lambda advance: reg.download(uri, output, progress=advance))


def tag(
    ctx: typer.Context,
    name: str,
    items: Annotated[list[str] | None, typer.Argument(help="[VERSION] KEY=VALUE...")] = None,
    delete: Annotated[list[str] | None, typer.Option(
        "--delete", metavar="KEY", help="Remove this tag instead (repeatable).")] = None,
    json: JsonOpt = False,
) -> None:
    """Set tags on a model, or on one version when the first argument is a version; with
    --delete KEY, remove tags instead. --json prints the model or version afterwards."""
    items = items or []
    version = items[0] if items and "=" not in items[0] else None
    pairs = items[1:] if version is not None else items
    subject = f"{name}{'' if version is None else ' version ' + version}"
    reg = registry(ctx)
    if delete:
        if pairs:
            raise InvalidInput("give KEY=VALUE pairs to set or --delete KEY to remove, "
                               "not both", hint=f"run 'modelyard tag {name} ...' twice")
        reg.delete_tags(name, delete, version=version)
        done = f"removed tag{'s' if len(delete) > 1 else ''} {', '.join(delete)} of {subject}"
    elif pairs:
        reg.set_tags(name, parse_pairs(pairs, "tag", scalars=False), version=version)
        done = f"tagged {subject}"
    else:
        raise InvalidInput("no tags given: expected KEY=VALUE, or --delete KEY")
    if json:
        print_json((reg.get_model(name) if version is None
                    else reg.get_version(name, version)).to_dict())
    else:
        console.print(escape(done))


def describe(
    ctx: typer.Context,
    name: str,
    args: Annotated[list[str], typer.Argument(help="[VERSION] TEXT")],
) -> None:
    """Set the description of a model, or of one version: describe NAME [VERSION] TEXT."""
    if len(args) not in (1, 2):
        raise InvalidInput("expected: modelyard describe NAME [VERSION] TEXT")
    version, text = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    registry(ctx).set_description(name, text, version=version)
    console.print(f"described {name}{'' if version is None else ' version ' + version}")


def verify(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Put corrupt and missing objects back from --from (verified).")] = False,
    source: Annotated[str | None, typer.Option(
        "--from", metavar="PATH_OR_STORE_URL",
        help="With --repair: the original file or folder, a folder store, or a store URL.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Re-hash every stored object; report corrupt or missing ones (exit 1 if any) and
    temporary files left by killed writers (see 'modelyard cleanup')."""
    if repair != (source is not None):
        raise InvalidInput("--repair and --from go together",
                           hint="modelyard verify --repair --from ORIGINAL_PATH_OR_STORE_URL")
    if repair:
        refuse_server(ctx, "verify --repair", "the registry's object store on this machine")
    report = registry(ctx).verify(repair_from=source)
    owners = report.owners
    if json:
        print_json(report.to_dict())
    else:
        console.print(f"checked {report.checked} objects")
        for digest in report.repaired:
            console.print(f"[green]repaired[/] {digest}")
        for label, digests in (("corrupt", report.corrupt), ("missing", report.missing)):
            for digest in digests:
                held = f" ({escape(', '.join(owners[digest]))})" if digest in owners else ""
                console.print(f"[red]{label}[/] {digest}{held}", highlight=False)
        if report.leftover_count:
            console.print(f"[yellow]leftovers[/] {report.leftover_count} temporary file(s),"
                          f" {report.leftover_bytes:,} bytes, from interrupted writes"
                          " (remove stale ones with 'modelyard cleanup')")
        if report.ok:
            console.print("[green]all objects intact[/]")
    if not report.ok:
        raise typer.Exit(1)


def add_top_level(app: typer.Typer) -> None:
    for command in (register, download, tag, describe, verify):
        app.command()(command)
