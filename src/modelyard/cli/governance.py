"""``modelyard policy …``, ``request``, ``requests …``, ``approve``, ``reject``, ``cancel``,
``audit [verify|checkpoint|keygen]`` and ``dossier``: the governed road to production, and
its record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelyard.cli.context import embedded, refuse_server, registry
from modelyard.cli.lifecycle import _change
from modelyard.cli.output import console, err_console, print_json
from modelyard.cli.paging import MaxResultsOpt, PageTokenOpt, print_page
from modelyard.cli.params import VersionArg
from modelyard.domain.entities import AuditEvent
from modelyard.domain.paging import Page
from modelyard.domain.policy import GateResult, Policy, PromotionRequest, RequestStatus
from modelyard.domain.times import parse_time
from modelyard.errors import IntegrityError, InvalidTransition

policy_app = typer.Typer(help="Per-model approval policies (approvals, reviewers, gates).",
                         no_args_is_help=True)
requests_app = typer.Typer(help="Promotion requests and their decisions.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RequestId = Annotated[int, typer.Argument(help="The request id printed by 'modelyard request'.")]
STATUSES = ", ".join(s.value for s in RequestStatus)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _verdict(gate: GateResult) -> str:
    return ("[green]pass[/] " if gate.passed else "[red]FAIL[/] ") + gate.describe()


def _policy_table(policy: Policy) -> Table:
    table = Table(show_header=False, title=f"policy of {policy.name}")
    table.add_column("field", style="bold")
    table.add_column("value")
    origin = ("default (no policy set)" if policy.is_default
              else f"{policy.created_at:%Y-%m-%d %H:%M:%S} by {policy.created_by}")
    for key, value in (
        ("policy version", f"{policy.policy_version}  {origin}"),
        ("approvals", str(policy.approvals)),
        ("reviewers", ", ".join(policy.reviewers) or "anyone but the requester and creator"),
        ("gates", "\n".join(policy.gates) or "-"),
        ("self-approval", _yes(policy.allow_self_approval)),
        ("rollback needs approval", _yes(policy.rollback_needs_approval)),
        ("comment", policy.comment or "-"),
    ):
        table.add_row(key, value)
    return table


def _request_details(request: PromotionRequest) -> Table:
    table = Table(show_header=False, title=f"request #{request.id}: {request.name} "
                                           f"version {request.version} → production")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("status", request.status + (f" ({request.close_reason})" if request.close_reason else "")),
        ("kind", request.kind), ("digest", request.digest),
        ("policy version", str(request.policy_version)),
        ("requested", f"{request.requested_at:%Y-%m-%d %H:%M:%S} by {request.requested_by}"
                      + (f": {request.comment}" if request.comment else "")),
        ("production then", str(request.production_version or "-")),
    ]
    rows += [("gate", _verdict(g)) for g in request.gates]
    rows += [("decision", f"{d.decision} by {d.actor} at {d.at:%Y-%m-%d %H:%M:%S}"
                          + (f": {d.comment}" if d.comment else "")) for d in request.decisions]
    for key, value in rows:
        table.add_row(key, value)
    return table


def _emit(item: Policy | PromotionRequest, json_output: bool, human: str | Table) -> None:
    """``--json`` prints the API's ``to_dict()``; people get ``human``."""
    if json_output:
        print_json(item.to_dict())
    else:
        console.print(human)


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    name: str,
    approvals: Annotated[int, typer.Option(
        help="Approvals production needs; 0 allows direct promotion (always audited).")] = 1,
    reviewer: Annotated[list[str] | None, typer.Option(
        help="A user who may decide, repeatable; none means anyone but the barred.")] = None,
    gate: Annotated[list[str] | None, typer.Option(
        help="An expression a candidate must pass, repeatable, "
             "e.g. \"metrics.auc >= production.metrics.auc - 0.01\".")] = None,
    allow_self_approval: Annotated[bool, typer.Option(
        "--allow-self-approval", help="Let the requester and the version's creator approve.")
    ] = False,
    rollback_needs_approval: Annotated[bool, typer.Option(
        "--rollback-needs-approval", help="Make rollback go through a request too.")] = False,
    comment: Annotated[str, typer.Option(help="Why the policy changes; kept in the audit log.")
    ] = "",
    json: JsonOpt = False,
) -> None:
    """Set a new policy version for NAME (replaces all rules; unset options take defaults)."""
    policy = registry(ctx).set_policy(
        name, approvals=approvals, reviewers=reviewer or [], gates=gate or [],
        allow_self_approval=allow_self_approval, rollback_needs_approval=rollback_needs_approval,
        comment=comment)
    _emit(policy, json, f"policy version {policy.policy_version} of {name} is in force")


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    name: str,
    policy_version: Annotated[int | None, typer.Option(
        "--policy-version", help="A past policy version [default: the current one].")] = None,
    json: JsonOpt = False,
) -> None:
    """Show the policy of NAME (the default one if none was set)."""
    policy = registry(ctx).get_policy(name, policy_version)
    _emit(policy, json, _policy_table(policy))


def request(
    ctx: typer.Context,
    name: str,
    version: VersionArg,
    comment: Annotated[str, typer.Option(help="Why this version should go to production.")] = "",
    json: JsonOpt = False,
) -> None:
    """Request production for VERSION: evaluates the gates now (exit 1 if any fails)."""
    made = registry(ctx).request_promotion(name, version, comment=comment)
    lines = [f"request #{made.id}: {name} version {made.version} → production ({made.status})"]
    lines += [_verdict(g) for g in made.gates]
    _emit(made, json, "\n".join(lines))
    if made.status == RequestStatus.REJECTED:
        raise InvalidTransition(f"request #{made.id} was rejected: {made.close_reason}",
                                hint="fix the version or the policy, then request again")


@requests_app.command("list")
def requests_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this model's requests.")] = None,
    status: Annotated[str | None, typer.Option(help=f"Only requests in this status: {STATUSES}.")
    ] = None,
    json: JsonOpt = False,
    max_results: MaxResultsOpt = None,
    page_token: PageTokenOpt = None,
) -> None:
    """List promotion requests, oldest first."""
    found = registry(ctx).list_requests(name, status=status, max_results=max_results,
                                        page_token=page_token)
    print_page(ctx, found, json, _requests_table)


def _requests_table(found: Page[PromotionRequest]) -> Table:
    table = Table()
    for column in ("id", "name", "version", "status", "requested", "gates", "approvals",
                   "closed"):
        table.add_column(column)
    for r in found:
        table.add_row(str(r.id), r.name, str(r.version), r.status,
                      f"{r.requested_at:%Y-%m-%d %H:%M} {r.requested_by}",
                      "pass" if r.gates_passed else "FAIL", ", ".join(r.approvals) or "-",
                      f"{r.closed_by}: {r.close_reason}" if r.closed_by else "-")
    return table


@requests_app.command("show")
def requests_show(ctx: typer.Context, request_id: RequestId, json: JsonOpt = False) -> None:
    """Show one request: gate evidence and every decision."""
    found = registry(ctx).get_request(request_id)
    _emit(found, json, _request_details(found))


def approve(
    ctx: typer.Context,
    request_id: RequestId,
    comment: Annotated[str, typer.Option(help="Kept with the decision.")] = "",
    json: JsonOpt = False,
) -> None:
    """Approve a request; the approval that reaches the policy's count applies it."""
    done = registry(ctx).approve(request_id, comment=comment)
    _emit(done, json, f"request #{done.id} applied: {done.name} version {done.version} is in "
                      "production" if done.status == RequestStatus.APPLIED else
                      f"approved request #{done.id} ({len(done.approvals)} approval(s) so far)")


def reject(
    ctx: typer.Context,
    request_id: RequestId,
    comment: Annotated[str, typer.Option(help="Why (required); kept with the decision.")],
    json: JsonOpt = False,
) -> None:
    """Reject a request; one rejection ends it."""
    done = registry(ctx).reject(request_id, comment=comment)
    _emit(done, json, f"rejected request #{done.id}")


def cancel(
    ctx: typer.Context,
    request_id: RequestId,
    comment: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
) -> None:
    """Withdraw your own pending request."""
    registry(ctx).cancel(request_id, comment=comment)
    console.print(f"cancelled request #{request_id}")


AUDIT_VERBS = ("verify", "checkpoint", "keygen")
KeyOpt = Annotated[Path | None, typer.Option(
    "--key", envvar="MODELYARD_AUDIT_KEY", show_envvar=True,
    help="Ed25519 key file that signs checkpoints (keep it off the database host).")]


def audit(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Argument(
        metavar="[NAME|verify|checkpoint|keygen]",
        help="A model's events only; 'verify' checks the log, 'checkpoint' signs its head, "
             "'keygen FILE' makes a signing key.")] = None,
    file: Annotated[Path | None, typer.Argument(
        metavar="[FILE]", help="For 'keygen': where to write the private key.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Events at or after this ISO-8601 time (UTC if no offset).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Events before this ISO-8601 time (UTC if no offset).")] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="For 'verify': prove the log still extends this checkpoint.")
    ] = None,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", envvar="MODELYARD_AUDIT_PUBLIC_KEY", show_envvar=True,
        help="For 'verify --checkpoint': the public key (.pub) that checks its signature "
             "(default: the public half of --key).")] = None,
    key: KeyOpt = None,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="For 'checkpoint': write it here (default: standard output).")
    ] = None,
    json: JsonOpt = False,
    max_results: MaxResultsOpt = None,
    page_token: PageTokenOpt = None,
) -> None:
    """The audit log (every change, hash-chained). 'audit verify' checks the chain, replays it
    against the tables and, with --checkpoint, proves it extends a signed checkpoint (exit 1)."""
    verb = target if target in AUDIT_VERBS else None
    _only_for(verb, keygen=file, checkpoint=output, verify=checkpoint)
    if verb is not None and any(x is not None for x in (since, until, max_results, page_token)):
        raise typer.BadParameter("--since, --until, --max-results and --page-token are only "
                                 "for listing the audit log")
    if verb == "keygen":
        _audit_keygen(file, json)
    elif verb == "checkpoint":
        _audit_checkpoint(ctx, key, output, json)
    elif verb == "verify":
        _audit_verify(ctx, checkpoint, public_key or key, json)
    else:
        events = registry(ctx).audit(target, since=parse_time(since) if since else None,
                                     until=parse_time(until) if until else None,
                                     max_results=max_results, page_token=page_token)
        print_page(ctx, events, json, lambda page: _audit_table(page, target))


def _only_for(verb: str | None, **given: object) -> None:
    for owner, value in given.items():
        if value is not None and verb != owner:
            what = "FILE" if owner == "keygen" else (
                "--output" if owner == "checkpoint" else "--checkpoint")
            raise typer.BadParameter(f"{what} is only for 'modelyard audit {owner}'")


def _audit_keygen(file: Path | None, json_output: bool) -> None:
    from modelyard.services import checkpoints

    if file is None:
        raise typer.BadParameter("'modelyard audit keygen FILE' needs the FILE to write")
    private, public = checkpoints.generate_key(file)
    ident = checkpoints.key_id(checkpoints.load_public_key(public))
    if json_output:
        print_json({"private_key": str(private), "public_key": str(public), "key_id": ident})
        return
    console.print(f"wrote {private} (mode 0600) and {public} (key {ident})\n"
                  f"sign with MODELYARD_AUDIT_KEY={private}; give {public} to auditors",
                  highlight=False)


def _audit_checkpoint(ctx: typer.Context, key: Path | None, output: Path | None,
                      json_output: bool) -> None:
    reg = embedded(ctx, "audit checkpoint", "the registry's database and the signing key")
    signed = reg.audit_checkpoint(key, output=output)
    if output is None or json_output:
        print_json(signed.to_dict())
    else:
        console.print(f"wrote the checkpoint of event {signed.seq} ({signed.hash[:19]}…) to "
                      f"{output}; ship it somewhere the database administrator cannot rewrite",
                      highlight=False)


def _audit_verify(ctx: typer.Context, checkpoint: Path | None, public_key: Path | None,
                  json_output: bool) -> None:
    if checkpoint is not None:  # proving the extension reads the chain up to its event
        refuse_server(ctx, "audit verify --checkpoint", "the registry's database")
    # the public key checks a checkpoint only (it may be set in the environment regardless)
    report = registry(ctx).verify_audit(
        checkpoint, public_key=public_key if checkpoint is not None else None)
    if json_output:
        print_json(report.to_dict())
        if not report.ok:
            raise typer.Exit(1)
        return
    if report.ok:
        extends = (f"; extends the checkpoint at event {report.checkpoint.seq}"
                   if report.checkpoint else "")
        console.print(f"[green]audit chain intact[/]: {report.checked} events; the tables agree "
                      f"with the log{extends}")
        return
    for line in report.problems():
        err_console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    found = [] if report.chain_ok else [f"audit chain broken at event {report.bad_seq}"]
    if report.checkpoint is not None and not report.checkpoint.ok:
        found.append(f"the log does not extend the checkpoint at event {report.checkpoint.seq}")
    if report.disagreements:
        found.append(f"{len(report.disagreements)} disagreement(s) between the tables and the "
                     "audit log")
    raise IntegrityError("; ".join(found), seq=report.bad_seq,
                         hint="the database was edited outside Modelyard or restored from an "
                              "older copy: compare it with a backup and the shipped checkpoints")


def _audit_table(events: Page[AuditEvent], target: str | None) -> Table:
    table = Table(title=f"audit log{' of ' + target if target else ''}")
    for column in ("#", "at", "actor", "action", "model", "version", "change", "comment"):
        table.add_column(column, overflow="fold")
    for e in events:
        table.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.model or "-",
                      str(e.version or "-"), _change(e.before, e.after), e.comment)
    return table


def dossier(
    ctx: typer.Context,
    name: str,
    version: VersionArg,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the JSON here [default: standard output].")] = None,
) -> None:
    """Everything that justified VERSION's promotion, as one JSON document for auditors."""
    document = registry(ctx).dossier(name, version)
    if output is None:
        print_json(document)
        return
    output.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    console.print(f"wrote the dossier of {name} version {version} to {output}")


def add_top_level(app: typer.Typer) -> None:
    for command in (request, approve, reject, cancel, audit, dossier):
        app.command()(command)
