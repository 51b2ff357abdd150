"""``modelyard users …`` and ``modelyard tokens …``: who may use a shared registry, and the
bearer tokens they (and their CI jobs) authenticate with.

They run against the registry that ``--registry`` names: on its database as the embedded
principal (whoever can open the database directly is its admin there), or on a server as
the user of ``MODELYARD_TOKEN``, whose role the server checks. A token is printed once,
when it is made: only a hash of it is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from modelyard.cli.context import registry
from modelyard.cli.output import console, err_console, print_json
from modelyard.cli.paging import MaxResultsOpt, PageTokenOpt, print_page
from modelyard.domain.access import Token, User
from modelyard.domain.principal import Role

users_app = typer.Typer(help="Users of a shared registry and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="Bearer tokens for the server (MODELYARD_TOKEN).",
                         no_args_is_help=True)

ROLES = "|".join(r.value for r in Role)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RoleOpt = Annotated[str, typer.Option(
    "--role", metavar=ROLES, help="viewer: read; contributor: also register, tag, alias, move "
    "stages, request, track; reviewer: also approve and reject; admin: everything.")]
UserArg = Annotated[str, typer.Argument(help="A user name (see 'modelyard users list').")]
ONCE = "store this token now: it is not shown again (only a hash of it is kept)"


def _when(value: datetime | None, none: str = "-") -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else none


def _issued(record: User | Token, token: str, json: bool, what: str) -> None:
    """Print a new token once: in the JSON as ``token``, or below ``what`` with a warning."""
    if json:
        print_json({**record.to_dict(), "token": token})
        return
    console.print(what, highlight=False, markup=False)
    console.print(f"token: {token}", highlight=False, markup=False, soft_wrap=True)
    err_console.print(ONCE, style="yellow", highlight=False)


def _users_table(users: list[User]) -> Table:
    table = Table()
    for column in ("name", "role", "status", "created", "created by"):
        table.add_column(column)
    for u in users:
        table.add_row(u.name, u.role.value, f"disabled {_when(u.disabled_at)}" if u.disabled
                      else "active", _when(u.created_at), u.created_by)
    return table


def _tokens_table(tokens: list[Token]) -> Table:
    table = Table()
    for column in ("id", "name", "user", "status", "created", "expires", "last used"):
        table.add_column(column, no_wrap=column == "id")
    for t in tokens:
        table.add_row(t.id, t.name or "-", t.user, t.status.value,
                      f"{_when(t.created_at)} {t.created_by}", _when(t.expires_at, "never"),
                      _when(t.last_used_at, "never"))
    return table


@users_app.command("create")
def users_create(ctx: typer.Context, name: UserArg, role: RoleOpt, json: JsonOpt = False) -> None:
    """Add user NAME with one role, and print their first token (shown only once)."""
    user, token = registry(ctx).create_user(name, role)
    _issued(user, token, json, f"created user {user.name} ({user.role.value})")


@users_app.command("list")
def users_list(ctx: typer.Context, json: JsonOpt = False, max_results: MaxResultsOpt = None,
               page_token: PageTokenOpt = None) -> None:
    """List users (disabled ones too) by name."""
    found = registry(ctx).list_users(max_results=max_results, page_token=page_token)
    print_page(ctx, found, json, lambda page: _users_table(page) if page else
               f"no users yet: 'modelyard users create NAME --role {ROLES}' adds one")


@users_app.command("set-role")
def users_set_role(
    ctx: typer.Context, name: UserArg,
    role: Annotated[str, typer.Argument(metavar="ROLE", help=f"The new role: {ROLES}.")],
    json: JsonOpt = False,
) -> None:
    """Give NAME another role; their tokens carry it from their next request."""
    user = registry(ctx).set_role(name, role)
    if json:
        print_json(user.to_dict())
    else:
        console.print(f"{user.name} is now {user.role.value}", highlight=False, markup=False)


@users_app.command("disable")
def users_disable(ctx: typer.Context, name: UserArg, json: JsonOpt = False) -> None:
    """Disable NAME: their tokens stop working at once (the last admin cannot be disabled)."""
    user = registry(ctx).disable_user(name)
    if json:
        print_json(user.to_dict())
    else:
        console.print(f"disabled {user.name}: their tokens no longer work", highlight=False,
                      markup=False)


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(
        "--name", metavar="N", help="What the token is for, e.g. ci or laptop.")] = None,
    expires: Annotated[str | None, typer.Option(
        "--expires", metavar="30d|2027-01-31",
        help="A number of days, or an ISO date or time (a date: its start, UTC) "
             "[default: never].")] = None,
    user: Annotated[str | None, typer.Option(
        "--user", metavar="NAME", help="For another user (admins only) [default: you].")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Make a token and print it (shown only once); use it as MODELYARD_TOKEN."""
    token, secret = registry(ctx).create_token(name, expires=expires, user=user)
    until = f"expires {_when(token.expires_at)} UTC" if token.expires_at else "never expires"
    _issued(token, secret, json, f"token {token.id} for {token.user} ({until})")


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(
        "--user", metavar="NAME", help="Another user's tokens (admins only) [default: yours].")
    ] = None,
    json: JsonOpt = False, max_results: MaxResultsOpt = None, page_token: PageTokenOpt = None,
) -> None:
    """List tokens, oldest first, with their status and last use (never the secret)."""
    found = registry(ctx).list_tokens(user, max_results=max_results, page_token=page_token)
    print_page(ctx, found, json, lambda page: _tokens_table(page) if page else
               "no tokens: 'modelyard tokens create' makes one")


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(
        metavar="ID", help="The token's id, as 'modelyard tokens list' shows it.")],
    json: JsonOpt = False,
) -> None:
    """Revoke a token by its id; it stops working at once."""
    token = registry(ctx).revoke_token(token_id)
    if json:
        print_json(token.to_dict())
    else:
        console.print(f"revoked token {token.id} of {token.user}", highlight=False,
                      markup=False)
