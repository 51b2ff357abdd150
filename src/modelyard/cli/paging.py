"""``--max-results`` and ``--page-token`` for every list command, and how a page is printed.

Without either option a list command prints everything, as before paging existed, and its
``--json`` stays a plain list so existing scripts keep working. With one of them, ``--json``
prints ``{"items": [...], "next_page_token": "..." | null}`` so a script can walk the pages,
and a table is followed (on stderr, dim) by the command that prints the next page. A bad
token or size is the service's ``InvalidInput``, reported by the root like any user error.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Annotated, Any, Protocol, TypeVar

import typer
from rich.console import RenderableType
from typer import _click as click  # typer vendors click: its types, not the package's
from typer._click.core import ParameterSource

from modelyard.cli.output import console, err_console, print_json
from modelyard.domain.paging import MAX_RESULTS, Page

MaxResultsOpt = Annotated[int | None, typer.Option(
    "--max-results", metavar="N",
    help=f"Print at most N items (1 to {MAX_RESULTS:,}) and the token of the next page.")]
PageTokenOpt = Annotated[str | None, typer.Option(
    "--page-token", metavar="TOKEN",
    help="Continue with the page after the one that printed TOKEN.")]

# The commands name their two options as the services do; a page is asked for when either is
# given on the command line.
_PAGING = ("max_results", "page_token")
# Left out of the next page's command: the page token is replaced, and a --token secret is
# never printed (what is printed lands on screens and in CI logs).
_NOT_REPEATED = frozenset({"page_token", "token"})


class _Item(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


ItemT = TypeVar("ItemT", bound=_Item)


def print_page(ctx: typer.Context, page: Page[ItemT], json: bool,
               render: Callable[[Page[ItemT]], RenderableType]) -> None:
    """Print ``page`` as JSON (paged shape only when paging was asked for) or as ``render``
    makes it, then, if more follows, the command line that continues it."""
    paged = any(ctx.params.get(name) is not None for name in _PAGING)
    if json:  # encoding imports pydantic: a table never pays for it
        items = [item.to_dict() for item in page]
        print_json({"items": items, "next_page_token": page.next_page_token} if paged
                   else items)
        return
    console.print(render(page))
    if page.next_page_token is not None:
        err_console.print(f"more: {next_page_command(ctx, page.next_page_token)}",
                          style="dim", highlight=False, markup=False, soft_wrap=True)


def next_page_command(ctx: click.Context, token: str) -> str:
    """The command line that ran ``ctx`` (every option given on it, global ones included,
    but never a ``--token`` secret), with ``--page-token token`` in place of any earlier
    one: ready to copy into a shell."""
    chain = [ctx]
    while chain[-1].parent is not None:
        chain.append(chain[-1].parent)
    words: list[str] = []
    for level in reversed(chain):
        if level is not chain[-1]:  # the program's name is not quoted: "python -m modelyard"
            words.append(level.info_name or "")
        for param in level.command.params:
            if param.name is None or param.name in _NOT_REPEATED or (
                    level.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE):
                continue
            words += _given(param, level.params[param.name])
    return f"{chain[-1].info_name} {shlex.join([*words, '--page-token', token])}"


def _given(param: click.Parameter, value: Any) -> list[str]:
    """The words that give ``param`` its parsed ``value`` again."""
    if param.param_type_name == "argument":
        values = value if isinstance(value, (list, tuple)) else [value]
        return [str(v) for v in values]
    if getattr(param, "is_flag", False):
        return [(param.opts if value else param.secondary_opts)[0]]
    values = value if param.multiple else [value]
    return [word for v in values for word in (param.opts[0], str(v))]
