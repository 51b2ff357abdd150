"""``modelyard cleanup``: remove what killed registers, pushes and fetches left behind."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli.context import store_url
from modelyard.cli.output import console, print_json
from modelyard.cli.params import duration
from modelyard.storage.content.leftovers import DEFAULT_GRACE, remove_leftovers
from modelyard.storage.content.objects import ObjectStore


def cleanup(
    ctx: typer.Context,
    store: Annotated[str | None, typer.Argument(
        metavar="[STORE_URL]",
        help="The store to clean: a folder, file://… or s3://… (default: the registry's"
             " --store); a data workspace's cache is .modelyard/cache.")] = None,
    older_than: Annotated[str, typer.Option(
        "--older-than", metavar="DURATION",
        help="Only leftovers older than this (90s, 30m, 1h, 2d), so running writers are"
             " not disturbed.")] = f"{int(DEFAULT_GRACE // 3600)}h",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List what would be removed; remove nothing.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Remove temporary files and incomplete uploads left by killed writers."""
    grace = duration(older_than, "--older-than")
    target = ObjectStore(store_url(ctx, store, "cleanup"))
    removed = remove_leftovers(target, grace, dry_run=dry_run)
    if json:
        print_json({"store": target.url, "dry_run": dry_run, "older_than_seconds": grace,
                    "removed": [item.to_dict() for item in removed],
                    "removed_count": len(removed),
                    "removed_bytes": sum(item.size for item in removed)})
        return
    verb = "would remove" if dry_run else "removed"
    console.print(f"{verb} {len(removed)} leftover(s), {sum(i.size for i in removed):,} bytes,"
                  f" older than {older_than} from {target.url}")
