"""How the CLI shows things: Rich tables for people, JSON (the API's field names) for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from modelyard.domain.entities import ModelVersion, RegisteredModel

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console.width = 160  # piped into a file or a pager: do not squeeze tables to 80 columns
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def number(value: Any) -> str:
    """A value for people: floats to 6 significant digits (``--json`` keeps them all)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _kv(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k}={number(v)}" for k, v in sorted(mapping.items()))


def _when(version: ModelVersion | RegisteredModel) -> str:
    return version.created_at.strftime("%Y-%m-%d %H:%M:%S")


def versions_table(versions: Iterable[ModelVersion], title: str | None = None) -> Table:
    rows = list(versions)
    many_models = len({v.name for v in rows}) > 1 or title is None
    table = Table(title=title)
    columns = (["name"] if many_models else []) + [
        "version", "stage", "aliases", "metrics", "params", "tags", "created", "digest"]
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in ("version", "stage"))
    for v in rows:
        cells = [str(v.version), v.stage, ", ".join("@" + a for a in v.aliases),
                 _kv(v.metrics), _kv(v.params), _kv(v.tags), f"{_when(v)} {v.created_by}",
                 v.digest[7:19]]
        table.add_row(*([v.name] if many_models else []), *cells)
    return table


def version_details(v: ModelVersion) -> Table:
    table = Table(show_header=False, title=v.uri)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: list[tuple[str, str]] = [
        ("stage", v.stage), ("aliases", ", ".join("@" + a for a in v.aliases) or "-"),
        ("digest", v.digest), ("artifact", f"{v.artifact_kind} {v.artifact_name}".strip()),
        ("size", f"{v.size:,} bytes in {v.file_count} file(s)"),
        ("params", _kv(v.params) or "-"), ("metrics", _kv(v.metrics) or "-"),
        ("tags", _kv(v.tags) or "-"), ("description", v.description or "-"),
        ("lineage", _kv(v.lineage) or "-"), ("created", f"{_when(v)} by {v.created_by}"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def models_table(items: Iterable[RegisteredModel]) -> Table:
    table = Table()
    for column in ("name", "versions", "latest", "production", "aliases", "tags", "created_by",
                   "description"):
        table.add_column(column)
    for m in items:
        table.add_row(m.name, str(m.version_count), str(m.latest_version or "-"),
                      str(m.production_version or "-"),
                      ", ".join(f"@{a}→{v}" for a, v in sorted(m.aliases.items())),
                      _kv(m.tags), m.created_by, m.description)
    return table


def tree_size(path: Path) -> int:
    """Bytes under ``path`` (for a progress bar's total); cheap: stat only."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


@contextmanager
def transfer_progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A Rich byte progress bar on stderr; silent when stderr is not a terminal."""
    from rich.progress import (  # only commands that move bytes pay for it
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
        disable=not err_console.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def interrupted(what_happened: Callable[[], str]) -> Iterator[None]:
    """On Ctrl-C: one line saying what was and was not stored, then exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print(what_happened(), highlight=False, soft_wrap=True)
        raise SystemExit(130) from None


def verified_download(uri: str, size: int, download: Callable[[Callable[[int], None]], Path]
                      ) -> None:
    """Run ``download(progress)`` under a byte progress bar and say where it landed."""
    with transfer_progress(f"downloading {uri}", size) as advance:
        path = download(advance)
    console.print(f"downloaded {uri} to {path}")
