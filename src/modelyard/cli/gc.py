"""``modelyard gc``: remove registry-store objects nothing references any more."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from modelyard.cli.context import registry
from modelyard.cli.output import console, err_console, print_json
from modelyard.cli.params import duration
from modelyard.errors import InvalidInput
from modelyard.storage.content.sweep import DEFAULT_GRACE_SECONDS


def gc(
    ctx: typer.Context,
    grace: Annotated[str, typer.Option(
        "--grace", metavar="DURATION", help="Keep unreferenced objects younger than this (0, "
        "90s, 30m, 1h, 2d): an upload stores content before it registers it.")
    ] = f"{int(DEFAULT_GRACE_SECONDS // 3600)}h",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what would be removed; remove nothing.")] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Remove without asking (needed when stdin is not a terminal).")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Remove stored objects no version (deleted ones included), dataset or run artifact
    needs. Admins only; a folder's files and a large file's chunks stay while in use."""
    seconds = duration(grace, "--grace")
    reg = registry(ctx)
    report = reg.collect_garbage(dry_run=True, grace_seconds=seconds)
    if not dry_run:
        if report.removed and not yes:
            _confirm(f"remove {len(report.removed)} object(s), {report.removed_bytes:,} bytes")
        report = reg.collect_garbage(grace_seconds=seconds)
    if json:
        print_json(report.to_dict())
        return
    verb = "would remove" if report.dry_run else "removed"
    console.print(f"{verb} {len(report.removed):,} object(s), {report.removed_bytes:,} bytes; "
                  f"kept {report.kept:,} in use and {report.young:,} younger than {grace}",
                  highlight=False)


def _confirm(summary: str) -> None:
    """Ask before deleting; refuse outright when nobody can answer."""
    if not sys.stdin.isatty():
        raise InvalidInput(f"refusing to {summary}: no terminal to confirm on",
                           hint="pass --yes, or --dry-run to count first")
    if not typer.confirm(f"{summary}?", default=False, err=True):
        err_console.print("nothing removed")
        raise typer.Exit(1)
