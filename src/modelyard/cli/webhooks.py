"""``modelyard webhooks …`` and ``modelyard events worker``: who hears of the registry's
events, every attempt to tell them, and the process that delivers them.

Subscriptions are admin operations, on the database directly or through a server. A
webhook's secret is printed once, when it is made: only a sealed copy is kept.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from modelyard.cli.context import embedded, registry
from modelyard.cli.output import console, err_console, print_json
from modelyard.cli.paging import MaxResultsOpt, PageTokenOpt, print_page
from modelyard.domain.webhooks import Delivery, Webhook

webhooks_app = typer.Typer(help="Webhook subscriptions and their delivery log.",
                           no_args_is_help=True)
events_app = typer.Typer(help="Deliver the registry's events to webhooks.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
IdArg = Annotated[int, typer.Argument(metavar="ID", help="The webhook's id "
                                      "(see 'modelyard webhooks list').")]
ONCE = "store this secret now: it is not shown again (receivers verify signatures with it)"


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


def _webhooks_table(hooks: list[Webhook]) -> Table:
    table = Table()
    for column in ("id", "url", "events", "model", "status", "pending", "created"):
        table.add_column(column, overflow="fold")
    for h in hooks:
        status = h.status.value + (f": {h.status_reason}" if h.status_reason else "")
        table.add_row(str(h.id), h.url, ", ".join(h.events), h.model or "(all)", status,
                      str(h.pending), f"{_when(h.created_at)} {h.created_by}")
    return table


def _deliveries_table(items: list[Delivery]) -> Table:
    table = Table()
    for column in ("id", "at", "event", "type", "try", "how", "status", "ms", "response"):
        table.add_column(column, overflow="fold")
    for d in items:
        status = str(d.status_code) if d.status_code is not None else "-"
        answer = (d.response if d.ok else d.error or d.response)[:80]
        table.add_row(str(d.id), _when(d.at), d.event_id, d.event_type, str(d.attempt),
                      d.trigger.value, ("ok " if d.ok else "failed ") + status,
                      str(d.latency_ms), answer)
    return table


def _print(item: Webhook | Delivery, json: bool, text: str) -> None:
    if json:
        print_json(item.to_dict())
    else:
        console.print(text, highlight=False, markup=False)


@webhooks_app.command("create")
def create(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where to POST events (must be in the server's "
                                       "MODELYARD_WEBHOOK_ALLOW).")],
    event: Annotated[list[str], typer.Option(
        "--event", metavar="TYPE", help="An event type to receive (repeat it), e.g. "
        "version.transition, request.created; '*' for all.")],
    model: Annotated[str | None, typer.Option(
        "--model", metavar="NAME", help="Only this model's events [default: every model].")
    ] = None,
    secret: Annotated[str | None, typer.Option(
        "--secret", metavar="S", help="The signing secret (16-256 characters) [default: a "
        "random one, printed once].")] = None,
    json: JsonOpt = False,
) -> None:
    """Subscribe URL to event types; prints the signing secret once."""
    hook, plain = registry(ctx).create_webhook(url, event, model=model, secret=secret)
    if json:
        print_json({**hook.to_dict(), "secret": plain})
        return
    console.print(f"webhook {hook.id}: {hook.url} ({', '.join(hook.events)})",
                  highlight=False, markup=False)
    console.print(f"secret: {plain}", highlight=False, markup=False, soft_wrap=True)
    err_console.print(ONCE, style="yellow", highlight=False)


@webhooks_app.command("list")
def list_(ctx: typer.Context, json: JsonOpt = False, max_results: MaxResultsOpt = None,
          page_token: PageTokenOpt = None) -> None:
    """List subscriptions with their status (and why one is paused) and queued events."""
    found = registry(ctx).list_webhooks(max_results=max_results, page_token=page_token)
    print_page(ctx, found, json, lambda page: _webhooks_table(page) if page else
               "no webhooks: 'modelyard webhooks create URL --event TYPE' adds one")


@webhooks_app.command("test")
def test(ctx: typer.Context, webhook_id: IdArg, json: JsonOpt = False) -> None:
    """Send a signed ping to a webhook now and show what it answered."""
    d = registry(ctx).test_webhook(webhook_id)
    _show_attempt(d, json, f"ping {d.event_id}", f", {d.latency_ms} ms")


@webhooks_app.command("disable")
def disable(
    ctx: typer.Context, webhook_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT",
                                        help="Why (shown by 'webhooks list').")] = "",
    json: JsonOpt = False,
) -> None:
    """Stop deliveries to a webhook; its events keep queueing until it is enabled."""
    hook = registry(ctx).disable_webhook(webhook_id, reason=reason)
    _print(hook, json, f"webhook {hook.id} disabled")


@webhooks_app.command("enable")
def enable(ctx: typer.Context, webhook_id: IdArg, json: JsonOpt = False) -> None:
    """Resume a disabled or paused webhook from the event it stopped at."""
    hook = registry(ctx).enable_webhook(webhook_id)
    _print(hook, json, f"webhook {hook.id} active ({hook.pending} event(s) queued)")


@webhooks_app.command("delete")
def delete(ctx: typer.Context, webhook_id: IdArg) -> None:
    """Delete a webhook: no more deliveries, its secret wiped; its delivery log stays."""
    registry(ctx).delete_webhook(webhook_id)
    console.print(f"webhook {webhook_id} deleted", highlight=False, markup=False)


@webhooks_app.command("deliveries")
def deliveries(ctx: typer.Context, webhook_id: IdArg, json: JsonOpt = False,
               max_results: MaxResultsOpt = None, page_token: PageTokenOpt = None) -> None:
    """Every delivery attempt to a webhook, newest first: status code, latency, answer."""
    found = registry(ctx).list_deliveries(webhook_id, max_results=max_results,
                                          page_token=page_token)
    print_page(ctx, found, json, lambda page: _deliveries_table(page) if page else
               "no deliveries yet")


@webhooks_app.command("redeliver")
def redeliver(
    ctx: typer.Context,
    delivery_id: Annotated[int, typer.Argument(
        metavar="DELIVERY_ID", help="A delivery's id (see 'modelyard webhooks deliveries').")],
    json: JsonOpt = False,
) -> None:
    """Send an earlier delivery's event again now, with the same event id."""
    d = registry(ctx).redeliver(delivery_id)
    _show_attempt(d, json, f"{d.event_id} attempt {d.attempt}")


def _show_attempt(d: Delivery, json: bool, what: str, extra: str = "") -> None:
    """One attempt made on request: what it was, ok or failed and the answer; a failed
    attempt exits 1, so a script can tell."""
    answer = f"HTTP {d.status_code}" if d.status_code is not None else d.error
    _print(d, json, f"{what}: {'ok' if d.ok else 'failed'} ({answer}{extra})")
    if not d.ok:
        raise typer.Exit(1)


@webhooks_app.command("key")
def key() -> None:
    """Print a new key for MODELYARD_WEBHOOK_KEY (seals webhook secrets at rest)."""
    from modelyard.services.webhook_delivery import SecretBox

    console.print(SecretBox.new_key(), highlight=False, markup=False)


@events_app.command("worker")
def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Make the attempts due now, then exit.")
                    ] = False,
) -> None:
    """Deliver events to webhooks until stopped (any number may run against one database)."""
    from modelyard.services.webhook_delivery import WebhookSettings, Worker

    reg = embedded(ctx, "events worker", "the registry's database")

    def report(d: Delivery) -> None:
        err_console.print(f"webhook {d.webhook_id} {d.event_id} ({d.event_type}) attempt "
                          f"{d.attempt}: {'ok' if d.ok else 'failed'} "
                          f"{d.status_code or d.error}", highlight=False, markup=False)

    runner = Worker(reg.db, WebhookSettings.from_environment(), report=report)
    try:
        if once:
            runner.run_once()
            return
        stop = threading.Event()
        try:
            runner.run(stop=stop, on_error=lambda e: err_console.print(
                f"webhook worker: {e}", highlight=False, markup=False))
        except KeyboardInterrupt:
            stop.set()
    finally:
        runner.close()
