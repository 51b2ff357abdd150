"""``modelyard transition``, ``rollback``, ``alias …``, ``history``, ``db …``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modelyard.cli.context import refuse_server, registry, settings
from modelyard.cli.output import console, number, print_json
from modelyard.cli.params import VersionArg, version_number
from modelyard.domain.times import parse_time

alias_app = typer.Typer(help="Named pointers to versions (champion, challenger…).",
                        no_args_is_help=True)
db_app = typer.Typer(help="The metadata database schema.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
CommentOpt = Annotated[str, typer.Option(help="Why; kept in the audit log.")]


def transition(ctx: typer.Context, name: str, version: VersionArg,
               stage: Annotated[str, typer.Argument(help="none, staging, production, archived")],
               comment: CommentOpt = "", json: JsonOpt = False) -> None:
    """Move a version to another stage (promoting archives the previous production)."""
    moved = registry(ctx).transition(name, version, stage, comment=comment)
    if json:
        print_json(moved.to_dict())
    else:
        console.print(f"{moved.uri} is now {moved.stage}")


def rollback(ctx: typer.Context, name: str,
             to: Annotated[int | None, typer.Option(
                 parser=version_number, metavar="VERSION",
                 help="A version that held production once (3 or v3).")] = None,
             comment: CommentOpt = "", json: JsonOpt = False) -> None:
    """Archive the current production and restore the previous one (or --to VERSION)."""
    restored = registry(ctx).rollback(name, to=to, comment=comment)
    if json:
        print_json(restored.to_dict())
    else:
        console.print(f"rolled back: {restored.uri} is production again")


def history(ctx: typer.Context, name: str,
            at: Annotated[str | None, typer.Option(help="ISO-8601 time; UTC if no offset.")] = None,
            json: JsonOpt = False) -> None:
    """Stage and alias changes; with --at, who held production at that time."""
    when = parse_time(at) if at else None
    state = registry(ctx).history(name, at=when)
    if json:
        print_json(state.to_dict())
        return
    if when is not None:
        holder = f"version {state.production}" if state.production else "no version"
        console.print(f"at {when.isoformat()}: {holder} of {name} held production")
        if state.aliases:
            pointers = ", ".join(f"@{a}→{v}" for a, v in sorted(state.aliases.items()))
            console.print(f"aliases: {pointers}")
    table = Table(title=f"history of {name}")
    for column in ("#", "at", "actor", "action", "version", "change", "comment"):
        table.add_column(column)
    for e in state.events:
        change = _change(e.before, e.after)
        table.add_row(str(e.seq), e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action,
                      str(e.version or "-"), change, e.comment)
    console.print(table)


def _change(before: dict[str, object] | None, after: dict[str, object] | None) -> str:
    before, after = before or {}, after or {}
    if "stage" in after and "stage" in before:
        return f"{before['stage']} → {after['stage']}"
    if "alias" in after:
        return f"@{after['alias']}: {before.get('version') or '-'} → {after.get('version') or '-'}"
    keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
    return "; ".join(f"{k}: {_shown(before.get(k))} → {_shown(after.get(k))}" for k in keys)


def _shown(value: object) -> str:
    return "-" if value is None or value == "" else number(value)




@alias_app.command("set")
def alias_set(ctx: typer.Context, name: str, alias: str, version: VersionArg) -> None:
    """Point ALIAS at VERSION (moves it if it pointed elsewhere)."""
    registry(ctx).set_alias(name, alias, version)
    console.print(f"models:/{name}@{alias} → version {version}")


@alias_app.command("delete")
def alias_delete(ctx: typer.Context, name: str, alias: str) -> None:
    """Remove an alias."""
    registry(ctx).delete_alias(name, alias)
    console.print(f"deleted alias @{alias} of {name}")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or upgrade the metadata schema (Alembic migrations)."""
    from modelyard.storage.sql.database import Database

    refuse_server(ctx, "db upgrade", "the registry's database")
    database = Database(settings(ctx).registry_uri, auto_upgrade=True)
    console.print(f"schema at {database.current_revision()}")


def add_top_level(app: typer.Typer) -> None:
    for command in (transition, rollback, history):
        app.command()(command)
