"""What an auditor reads: the audit log, its verification, checkpoints, and a version's dossier.

Verification is three checks in one snapshot: the hash chain, a replay of the log compared
with the tables (an edit the log does not explain is named field by field), and optionally a
signed checkpoint the current log must still extend (see ``services.checkpoints``).

The dossier gathers, in one JSON document, everything that justified (or refused) a version's
way to production: the version and its digest, its lineage, the policy versions that judged it,
each request with its gate evidence and decisions, the stage changes from the audit log, and the
result of recomputing the hash chain at the moment of export.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from modelyard.domain.audit_report import AuditReport, compare
from modelyard.domain.entities import AuditEvent
from modelyard.domain.history import logged_facts
from modelyard.domain.paging import Page, check_max_results, collect, decode_token
from modelyard.domain.principal import Permission
from modelyard.errors import IntegrityError
from modelyard.services import checkpoints
from modelyard.services.base import Context, UseCase, in_utc
from modelyard.services.checkpoints import Checkpoint
from modelyard.services.governance import Governance
from modelyard.services.operations import operation
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import governance_repository as gov
from modelyard.storage.sql.database import redact
from modelyard.storage.sql.state_facts import current_facts

DOSSIER_FORMAT = 1
STAGE_ACTIONS = frozenset({"version.transition", "version.rollback", "promotion.direct"})


class Oversight(UseCase):
    def __init__(self, ctx: Context, governance: Governance) -> None:
        super().__init__(ctx)
        self.governance = governance

    @operation(Permission.READ)
    def audit(
        self, name: str | None = None, *, since: datetime | None = None,
        until: datetime | None = None, max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page[AuditEvent]:
        """Audit events, oldest first: all of them, or one model's; from ``since``
        (inclusive) to ``until`` (exclusive), so adjacent windows never share an event."""
        since = in_utc(since, "since") if since is not None else None
        end = in_utc(until, "until") if until is not None else None
        limit, cursor = check_max_results(max_results), decode_token(page_token, "audit", 1)
        with self.db.read() as conn:
            if name is not None:
                self._model(conn, name)
            return collect(lambda after, n: audit.list_events(
                conn, model=name, since=since, until=end, cursor=after, limit=n),
                lambda e: (e.seq,), limit, cursor, kind="audit")

    @operation(Permission.READ)
    def verify_audit(
        self, checkpoint: Checkpoint | str | os.PathLike[str] | None = None, *,
        public_key: str | os.PathLike[str] | None = None,
    ) -> AuditReport:
        """Recompute the chain, replay it against the tables and, given a checkpoint (a file
        or a ``Checkpoint``), prove the log still extends it. A checkpoint whose signature
        does not verify with ``public_key`` (default: ``$MODELYARD_AUDIT_PUBLIC_KEY``, else
        the public half of ``$MODELYARD_AUDIT_KEY``) is refused with ``IntegrityError``."""
        signed = None
        if checkpoint is not None:
            signed = (checkpoint if isinstance(checkpoint, Checkpoint)
                      else checkpoints.read_checkpoint(checkpoint))
            checkpoints.verify_signature(signed, checkpoints.load_public_key(public_key))
        with self.db.read() as conn:
            audit.snapshot(conn)
            return _full_report(conn, signed)

    @operation(Permission.ADMIN)
    def audit_checkpoint(
        self, key: str | os.PathLike[str] | None = None, *,
        output: str | os.PathLike[str] | None = None,
    ) -> Checkpoint:
        """Sign the chain head with the Ed25519 key file ``key`` (default:
        ``$MODELYARD_AUDIT_KEY``); write it to ``output`` if given. Refused while the log
        does not verify: a checkpoint must never vouch for a tampered log."""
        private = checkpoints.load_private_key(key)
        with self.db.read() as conn:
            audit.snapshot(conn)
            report = _full_report(conn, None)
            if not report.ok:
                raise IntegrityError(
                    f"refusing to checkpoint an audit log that does not verify: "
                    f"{report.problems()[0]}", hint="run 'modelyard audit verify' to see every "
                                                    "problem")
            seq, head_hash = audit.head(conn)
            first, last = audit.event_at(conn, 1), audit.event_at(conn, seq)
        signed = checkpoints.sign(
            private, seq=seq, hash=head_hash, event_at=last.at if last else None,
            at=self.clock(), registry=first.hash if first else audit.GENESIS_HASH,
            registry_url=redact(self.db.url))
        if output is not None:
            checkpoints.write_checkpoint(signed, Path(output))
        return signed

    @operation(Permission.READ)
    def dossier(self, name: str, version: int | str) -> dict[str, Any]:
        """One JSON-ready document that justifies a version's promotion, for auditors."""
        with self.db.read() as conn:
            model, row = self._resolve(conn, self._ref(name, version))
            found = self._versions(conn, [row], model.name)[0]
            requests = self.governance.load_requests(
                conn, gov.list_requests(conn, version_id=row.id))
            events = [e for e in audit.list_events(conn, model=model.name)
                      if e.version == found.version]
            transitions = [e for e in events if e.action in STAGE_ACTIONS]
            bound = {r.policy_version for r in requests} | {
                int((e.after or {})["policy_version"]) for e in transitions
                if e.action == "promotion.direct"}
            policies = {str(n): self.governance.policy_of(conn, model, n).to_dict()
                        for n in sorted(bound)}
            current = self.governance.policy_of(conn, model)
            chain = _full_report(conn, None)
        return {
            "dossier_format": DOSSIER_FORMAT,
            "generated_at": self.clock().isoformat(),
            "name": found.name,
            "version": found.to_dict(),
            "digest": found.digest,
            "lineage": found.lineage,
            "policy": current.to_dict(),
            "policies": policies,
            "requests": [r.to_dict() for r in requests],
            "transitions": [e.to_dict() for e in transitions],
            "audit_chain": chain.to_dict(),
        }


def _full_report(conn: Connection, checkpoint: Checkpoint | None) -> AuditReport:
    events = audit.list_events(conn)
    checked, bad, reason = audit.verify_chain(conn, events)
    disagreements = compare(current_facts(conn), logged_facts(events))
    checked_point = (None if checkpoint is None else
                     checkpoints.check_extends(conn, checkpoint, chain_ok=bad is None))
    return AuditReport(checked, bad.seq if bad else None, reason, tuple(disagreements),
                       checked_point)
