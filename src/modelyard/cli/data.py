"""``modelyard data …``: git-native data versioning (thin: parse, call, print)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from modelyard import data
from modelyard.cli.context import registry, settings
from modelyard.cli.output import (
    console,
    err_console,
    print_json,
    transfer_progress,
    tree_size,
    verified_download,
)
from modelyard.cli.paging import MaxResultsOpt, PageTokenOpt, print_page
from modelyard.cli.params import duration
from modelyard.domain.datasets import DatasetVersion
from modelyard.domain.names import parse_pairs
from modelyard.errors import InvalidInput
from modelyard.services.data.progress import Meter

app = typer.Typer(help="Version data with git: pointer files in git, content in a cache and "
                       "remotes (S3, folders, any fsspec URL).", no_args_is_help=True)
remote_app = typer.Typer(help="Remotes: where push and pull move data.", no_args_is_help=True)
app.add_typer(remote_app, name="remote")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
PathsArg = Annotated[list[Path] | None, typer.Argument(
    help="Tracked files or folders (or their .yard pointers); all when omitted.")]
RemoteOpt = Annotated[str | None, typer.Option(
    "--remote", "-r", help="Remote name [default: the default remote].")]
JobsOpt = Annotated[int | None, typer.Option(
    "--jobs", "-j", min=1, help="Parallel transfers [default: 4 per core, at most 32].")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", "-f", help="Overwrite local changes that are not in the cache.")]


class _RichMeter:
    """Files and bytes on one Rich bar per phase (thread-safe; silent without a terminal)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._files = 0
        self._total: int | None = None
        self._lock = threading.Lock()

    def start(self, description: str, files: int | None, total_bytes: int | None) -> None:
        with self._lock:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._files, self._total = 0, files
            self._task = self._progress.add_task(description, total=total_bytes,
                                                 files=self._label())

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)

    def file_done(self) -> None:
        with self._lock:
            self._files += 1
            if self._task is not None:
                self._progress.update(self._task, files=self._label())

    def _label(self) -> str:
        return f"{self._files}/{self._total} files" if self._total is not None else ""


@contextmanager
def _meter() -> Iterator[Meter]:
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[files]}"),
        DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(), console=err_console,
        transient=True, disable=not err_console.is_terminal,
    )
    with progress:
        yield _RichMeter(progress)


def _paths(paths: list[Path] | None) -> list[Path]:
    return list(paths or [])


@app.command("init")
def init() -> None:
    """Create .modelyard/ (config committed; cache and state ignored) at the git root."""
    root = data.init()
    console.print(f"initialised Modelyard data in {root}/.modelyard "
                  "(commit .modelyard/config and .modelyard/.gitignore)")


@app.command("add")
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to track.")],
    json: JsonOpt = False,
) -> None:
    """Track files or folders: cache the content, write PATH.yard, git-ignore PATH."""
    with _meter() as meter:
        added = data.add(*paths, meter=meter)
    if json:
        print_json([a.to_dict() for a in added])
        return
    for a in added:
        verb = "added" if a.changed else "unchanged"
        console.print(f"{verb} {a.tracked.data_path} ({a.tracked.pointer.file_count} files, "
                      f"{a.tracked.pointer.size:,} bytes) → git add {a.tracked.pointer_path}")


@app.command("status")
def status(
    paths: PathsArg = None,
    remote: RemoteOpt = None,
    cloud: Annotated[bool, typer.Option(
        "--cloud", "-c", help="Ask the remote what it holds instead of the local record.")] = False,
    json: JsonOpt = False,
) -> None:
    """Show modified, missing, not-in-cache, corrupted-in-cache and not-pushed data."""
    report = data.status(*_paths(paths), remote=remote, cloud=cloud)
    if json:
        print_json(report.to_dict())
        return
    if report.clean:
        console.print(f"{report.tracked} tracked item(s); everything is up to date")
        return
    for label, items in (("modified", report.modified), ("missing", report.missing),
                         ("not in cache", report.not_in_cache),
                         ("corrupted in cache", report.corrupted_in_cache),
                         (f"not pushed to {report.remote}", report.not_pushed)):
        for item in items:
            console.print(f"[yellow]{label}:[/] {escape(item)}", highlight=False)
    if report.corrupted_in_cache:
        console.print("hint: 'modelyard data pull' replaces corrupted cache objects with "
                      "verified copies from the remote", highlight=False, markup=False)


LocalOpt = Annotated[bool, typer.Option(
    "--local", help="Write to .modelyard/config.local (this machine only, git-ignored): "
                    "credentials, endpoints.")]


@remote_app.command("add")
def remote_add(
    name: Annotated[str, typer.Argument(help="A short name, e.g. origin.")],
    url: Annotated[str, typer.Argument(
        help="A folder (relative to the repository root), file://…, s3://bucket/prefix, "
             "or any fsspec URL.")],
    default: Annotated[bool, typer.Option(
        "--default", "-d", help="Use it when no --remote is given.")] = False,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="fsspec option KEY=VALUE, e.g. endpoint_url=http://…; "
                               "repeatable. Secrets (key, secret, token…) need --local.")] = None,
    local: LocalOpt = False,
) -> None:
    """Add a remote to .modelyard/config (or, with --local, to config.local)."""
    remote = data.remote_add(name, url, default=default, local=local,
                             options=parse_pairs(option or [], "option", scalars=False))
    where = "config.local" if local else "config"
    console.print(f"added remote {remote.name} → {remote.url} ({where})")


@remote_app.command("modify")
def remote_modify(
    name: Annotated[str, typer.Argument(help="The remote to change.")],
    option: Annotated[str, typer.Argument(
        help="url, or an fsspec option: endpoint_url, key, secret, token, profile, …")],
    value: Annotated[str | None, typer.Argument(help="The new value (omit with --unset).")]
    = None,
    local: LocalOpt = False,
    unset: Annotated[bool, typer.Option(
        "--unset", "-u", help="Remove the setting from that file instead.")] = False,
) -> None:
    """Set or unset one setting of a remote; config.local overrides config."""
    data.remote_modify(name, option, value, local=local, unset=unset)
    where = "config.local" if local else "config"
    console.print(f"{'unset' if unset else 'set'} {name}.{option} ({where})")


@remote_app.command("list")
def remote_list(json: JsonOpt = False) -> None:
    """List remotes as merged (default marked, secrets masked, each setting's file)."""
    found = data.remote_list()
    if json:
        print_json(found)
        return
    table = Table()
    for column in ("name", "url", "default", "options"):
        table.add_column(column)

    def origin(r: dict[str, Any], setting: str) -> str:
        return " (local)" if r["sources"].get(setting, "").endswith("config.local") else ""

    for r in found:
        table.add_row(escape(r["name"]), escape(r["url"] + origin(r, "url")),
                      "yes" if r["default"] else "",
                      escape(", ".join(f"{k}={v}{origin(r, k)}" for k, v in r["options"].items())))
    console.print(table)


@remote_app.command("remove")
def remote_remove(name: Annotated[str, typer.Argument(help="The remote to remove.")]) -> None:
    """Remove a remote from .modelyard/config and config.local (its data is left alone)."""
    data.remote_remove(name)
    console.print(f"removed remote {name}")


def _print_transfer(verb: str, report: Any, json: bool) -> None:
    if json:
        print_json(report.to_dict())
    else:
        console.print(f"{verb} {report.transferred} object(s), {report.bytes:,} bytes "
                      f"({report.already_present} already there) — remote {report.remote}")


@app.command("push")
def push(paths: PathsArg = None, remote: RemoteOpt = None, jobs: JobsOpt = None,
         json: JsonOpt = False) -> None:
    """Upload cached data the remote does not have yet."""
    with _meter() as meter:
        report = data.push(*_paths(paths), remote=remote, jobs=jobs, meter=meter)
    _print_transfer("pushed", report, json)


@app.command("fetch")
def fetch(paths: PathsArg = None, remote: RemoteOpt = None, jobs: JobsOpt = None,
          json: JsonOpt = False) -> None:
    """Download into the cache what the pointer files need (the working tree is untouched)."""
    with _meter() as meter:
        report = data.fetch(*_paths(paths), remote=remote, jobs=jobs, meter=meter)
    _print_transfer("fetched", report, json)


@app.command("pull")
def pull(paths: PathsArg = None, remote: RemoteOpt = None, jobs: JobsOpt = None,
         force: ForceOpt = False, json: JsonOpt = False) -> None:
    """Fetch, then check out: the working tree gets the data its pointer files name."""
    with _meter() as meter:
        fetched, checked = data.pull(*_paths(paths), remote=remote, jobs=jobs, force=force,
                                     meter=meter)
    if json:
        print_json({"fetch": fetched.to_dict(), "checkout": checked.to_dict()})
        return
    _print_transfer("fetched", fetched, False)
    _print_checkout(checked)


def _print_checkout(report: data.CheckoutReport) -> None:
    for path in report.restored:
        console.print(f"restored {path}")
    console.print(f"{report.files_written} file(s) written, {report.files_removed} removed, "
                  f"{len(report.unchanged)} item(s) already up to date")


@app.command("checkout")
def checkout(paths: PathsArg = None, force: ForceOpt = False, jobs: JobsOpt = None,
             json: JsonOpt = False) -> None:
    """Make the working tree match the pointer files (e.g. after git checkout)."""
    with _meter() as meter:
        report = data.checkout(*_paths(paths), force=force, jobs=jobs, meter=meter)
    if json:
        print_json(report.to_dict())
    else:
        _print_checkout(report)


@app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="Old git revision.")] = "HEAD",
    new: Annotated[str | None, typer.Argument(
        help="New git revision [default: the working tree].")] = None,
    json: JsonOpt = False,
) -> None:
    """Data files added, removed and modified between two git revisions, or (without NEW)
    between OLD and the working tree, edits not yet added included."""
    report = data.diff(old, new)
    if json:
        print_json(report.to_dict())
        return
    for label, items in (("added", report.added), ("removed", report.removed),
                         ("modified", report.modified)):
        for item in items:
            console.print(f"{label}: {item}", highlight=False)
    if not (report.added or report.removed or report.modified):
        console.print(f"no data changes between {report.old} and {report.new}")


_SHOWN = 10  # objects listed before the prompt; --dry-run --json lists them all


def _interactive() -> bool:
    """Whether someone can answer a prompt: stdin is a terminal."""
    return sys.stdin.isatty()


def _confirm_gc(plan: data.GcReport) -> bool:
    """Show what gc would delete and ask; refuse outright when nobody can answer."""
    summary = (f"remove {len(plan.garbage)} object(s), {sum(g.size for g in plan.garbage):,} "
               f"bytes, from {plan.store}")
    if not _interactive():
        raise InvalidInput(f"refusing to {summary}: no terminal to confirm on",
                           hint="pass --yes to delete without asking, or --dry-run to list "
                                "what would be removed")
    err_console.print(f"kept: everything referenced by the {', '.join(plan.scope)}",
                      highlight=False)
    for item in plan.garbage[:_SHOWN]:
        err_console.print(f"  {item.digest}  {item.size:,} bytes", highlight=False)
    if len(plan.garbage) > _SHOWN:
        err_console.print(f"  … and {len(plan.garbage) - _SHOWN} more (see --dry-run --json)")
    return typer.confirm(f"{summary}?", default=False, err=True)


@app.command("gc")
def gc(
    ctx: typer.Context,
    workspace: Annotated[bool, typer.Option(
        "--workspace", "-w", help="Narrow what is kept to the working tree and the index "
                                  "(plus --all-branches/--all-tags tips if given).")] = False,
    all_branches: Annotated[bool, typer.Option(
        "--all-branches", help="Narrow to the working tree, index and the tips of local and "
                               "remote-tracking branches.")] = False,
    all_tags: Annotated[bool, typer.Option(
        "--all-tags", help="Narrow to the working tree, index and tagged commits.")] = False,
    all_commits: Annotated[bool, typer.Option(
        "--all-commits", "-a", help="Keep the data of every commit git can reach (branches, "
                                    "tags, stashes, reflogs): the default, kept for scripts.")
    ] = False,
    remote: Annotated[str | None, typer.Option(
        "--remote", "-r", help="Clean this remote instead of the local cache.")] = None,
    only_this_clone: Annotated[bool, typer.Option(
        "--only-this-clone", help="Accept that a remote gc sees only this clone's references "
                                  "(data other clones pushed for their branches is deleted).")
    ] = False,
    grace: Annotated[str, typer.Option(
        "--grace", help="Never delete objects younger than this (0, 90s, 30m, 1h, 2d), so a "
                        "concurrent add or push is not raced.")] = "1h",
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Delete without asking (needed when stdin is not a terminal).")
    ] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", "-n", help="Only list what would be deleted.")] = False,
    json: JsonOpt = False,
) -> None:
    """Delete cached (or pushed) objects nothing references; shows them and asks first.

    By default keeps the data of the working tree, index, branches, tags, stashes, reflogs.
    """
    if remote and dry_run and not only_this_clone:
        err_console.print("note: this lists what this clone does not reference; other clones "
                          "may need some of it", highlight=False)
    report = data.gc(workspace=workspace, all_branches=all_branches, all_tags=all_tags,
                     all_commits=all_commits, remote=remote, only_this_clone=only_this_clone,
                     dry_run=dry_run, grace=duration(grace, "--grace"),
                     confirm=None if yes else _confirm_gc,
                     registry_store=settings(ctx).store_uri)
    if json:
        print_json(report.to_dict())
        return
    if report.declined:
        console.print("nothing removed")
        return
    verb = "would remove" if dry_run else "removed"
    console.print(f"{verb} {report.removed_count} object(s), {report.removed_bytes:,} bytes, "
                  f"from {report.store}; kept {report.kept} referenced and {report.young} "
                  f"younger than {grace}", highlight=False)
    if dry_run:
        for item in report.garbage:
            console.print(f"  {item.digest}  {item.size:,} bytes", highlight=False)


@app.command("unprotect")
def unprotect(paths: Annotated[list[Path], typer.Argument(
        help="Checked-out files or folders to make writable.")]) -> None:
    """Replace read-only links into the cache by writable copies, so editing is safe."""
    changed = data.unprotect(*paths)
    console.print(f"{len(changed)} file(s) made writable")


@app.command("register")
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name (created if missing).")],
    path: Annotated[Path, typer.Argument(help="A file, a folder or a .yard pointer file.")],
    description: Annotated[str, typer.Option(help="What this version contains.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    json: JsonOpt = False,
) -> None:
    """Store data in the registry as the next numbered version: datasets:/NAME/N."""
    total = tree_size(path) if path.exists() and path.suffix != ".yard" else None
    with transfer_progress(f"storing {path.name}", total) as advance:
        found = registry(ctx).register_dataset(
            name, path, description=description,
            tags=parse_pairs(tag or [], "tag", scalars=False), progress=advance)
    if json:
        print_json(found.to_dict())
    else:
        console.print(f"registered {found.uri} ({found.digest})")


@app.command("get")
def get(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="datasets:/NAME/VERSION (or datasets:/NAME).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Destination folder.")],
) -> None:
    """Download a registered dataset version, every byte verified (no git needed)."""
    reg = registry(ctx)
    found = reg.get_dataset(uri)
    verified_download(found.uri, found.size,
                      lambda advance: reg.download_dataset(found.uri, output, progress=advance))


@app.command("list")
def list_datasets(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this dataset's versions.")] = None,
    json: JsonOpt = False,
    max_results: MaxResultsOpt = None,
    page_token: PageTokenOpt = None,
) -> None:
    """List registered dataset versions."""
    found = registry(ctx).list_datasets(name, max_results=max_results, page_token=page_token)
    print_page(ctx, found, json, _datasets_table)


@app.command("show")
def show(ctx: typer.Context, uri: Annotated[str, typer.Argument(
        help="datasets:/NAME/VERSION (or datasets:/NAME for the latest).")],
         json: JsonOpt = False,
         added: Annotated[bool, typer.Option(
             "--added", help="Also say how many stored bytes this version added that no "
                             "earlier version of the dataset needs (with chunking, only the "
                             "chunks that changed).")] = False) -> None:
    """Show one registered dataset version."""
    reg = registry(ctx)
    found = reg.get_dataset(uri)
    extra = {"added_bytes": reg.dataset_added_bytes(found.name, found.version)} if added else {}
    if json:
        print_json({**found.to_dict(), **extra})
    else:
        console.print(_datasets_table([found]))
        if added:
            console.print(f"added to the store: {extra['added_bytes']:,} bytes "
                          f"of {found.size:,}", highlight=False)


def _datasets_table(items: list[DatasetVersion]) -> Table:
    table = Table()
    for column in ("uri", "kind", "files", "size", "created", "digest", "description"):
        table.add_column(column, overflow="fold")
    for d in items:
        table.add_row(d.uri, d.kind, str(d.file_count), f"{d.size:,}",
                      f"{d.created_at:%Y-%m-%d %H:%M:%S} {d.created_by}", d.digest[7:19],
                      d.description)
    return table
