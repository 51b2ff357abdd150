"""``modelyard storage stats``: what chunk-level dedup saves in the registry's store."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli.context import store_url
from modelyard.cli.output import console, print_json
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.content.usage import store_stats

app = typer.Typer(help="The object store: what it holds and what dedup saves.",
                  no_args_is_help=True)


@app.command("stats")
def stats(
    ctx: typer.Context,
    store: Annotated[str | None, typer.Argument(
        metavar="[STORE_URL]",
        help="The store to measure: a folder, file://… or s3://… (default: the registry's"
             " --store); a data remote's URL works too.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Logical bytes (every file at full size), stored bytes and the dedup ratio."""
    result = store_stats(ObjectStore(store_url(ctx, store, "storage stats")))
    if json:
        print_json(result.to_dict())
        return
    console.print(
        f"{result.store}: {result.objects:,} object(s), {result.chunked_files:,} chunked"
        f" file(s) in {result.chunks:,} chunk(s)\n"
        f"logical {result.logical_bytes:,} bytes, stored {result.stored_bytes:,} bytes,"
        f" saved {result.logical_bytes - result.stored_bytes:,} (ratio {result.ratio:.2f}x)",
        highlight=False)
