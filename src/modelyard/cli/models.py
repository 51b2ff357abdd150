"""``modelyard models …``: registered models."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli.context import registry
from modelyard.cli.output import console, models_table, print_json
from modelyard.cli.paging import MaxResultsOpt, PageTokenOpt, print_page
from modelyard.domain.names import parse_pairs

app = typer.Typer(help="List, show, create, rename and delete registered models.",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("list")
def list_models(ctx: typer.Context, json: JsonOpt = False, max_results: MaxResultsOpt = None,
                page_token: PageTokenOpt = None) -> None:
    """List registered models."""
    found = registry(ctx).list_models(max_results=max_results, page_token=page_token)
    print_page(ctx, found, json, lambda page: models_table(page) if page else
               "no models yet: 'modelyard register NAME PATH' creates one")


@app.command("show")
def show(ctx: typer.Context, name: str, json: JsonOpt = False) -> None:
    """Show one model: versions, production, aliases, tags."""
    model = registry(ctx).get_model(name)
    if json:
        print_json(model.to_dict())
    else:
        console.print(models_table([model]))


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option(help="What the model is for.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    json: JsonOpt = False,
) -> None:
    """Create an empty model (register also creates one when missing)."""
    model = registry(ctx).create_model(
        name, description=description, tags=parse_pairs(tag or [], "tag", scalars=False)
    )
    if json:
        print_json(model.to_dict())
    else:
        console.print(f"created model {model.name}")


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Soft-delete a model; its name stays reserved so version numbers are never reused."""
    registry(ctx).delete_model(name)
    console.print(f"deleted model {name}")


@app.command("rename")
def rename(ctx: typer.Context, name: str, new_name: Annotated[str, typer.Argument(
        help="The model's new name (free: no live or deleted model holds it).")],
           json: JsonOpt = False) -> None:
    """Rename a model (admins only); its versions, aliases, stages, policy, requests and
    history follow it, and the old name is free. Addresses with the old name stop working."""
    model = registry(ctx).rename_model(name, new_name)
    if json:
        print_json(model.to_dict())
    else:
        console.print(f"renamed model {name} to {model.name}: use models:/{model.name}/... "
                      "from now on")
