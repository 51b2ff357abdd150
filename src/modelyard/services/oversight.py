"""What an auditor reads: the audit log, its verification, and a version's dossier.

The dossier gathers, in one JSON document, everything that justified (or refused) a version's
way to production: the version and its digest, its lineage, the policy versions that judged it,
each request with its gate evidence and decisions, the stage changes from the audit log, and the
result of recomputing the hash chain at the moment of export.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from modelyard.domain.entities import AuditEvent
from modelyard.domain.policy import ChainReport
from modelyard.services import audit
from modelyard.services.governance import GovernanceService
from modelyard.storage import governance_repository as gov

DOSSIER_FORMAT = 1
STAGE_ACTIONS = frozenset({"version.transition", "version.rollback", "promotion.direct"})


class OversightService(GovernanceService):
    def audit(self, name: str | None = None, *, since: datetime | None = None) -> list[AuditEvent]:
        """Audit events, oldest first: all of them, or one model's; ``since`` is inclusive."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # a naive time is read as UTC, like stored times
        with self.db.read() as conn:
            if name is not None:
                self._model(conn, name)
            return audit.list_events(conn, model=name, since=since)

    def verify_audit(self) -> ChainReport:
        """Recompute every event's hash and link; name the first event that does not fit."""
        with self.db.read() as conn:
            return _chain_report(conn)

    def dossier(self, name: str, version: int | str) -> dict[str, Any]:
        """One JSON-ready document that justifies a version's promotion, for auditors."""
        with self.db.read() as conn:
            model, row = self._resolve(conn, self._ref(name, version))
            found = self._versions(conn, [row], model.name)[0]
            requests = self._requests(conn, gov.list_requests(conn, version_id=row.id))
            events = [e for e in audit.list_events(conn, model=model.name)
                      if e.version == found.version]
            transitions = [e for e in events if e.action in STAGE_ACTIONS]
            bound = {r.policy_version for r in requests} | {
                int((e.after or {})["policy_version"]) for e in transitions
                if e.action == "promotion.direct"}
            policies = {str(n): self._policy(conn, model, n).to_dict() for n in sorted(bound)}
            current = self._policy(conn, model)
            chain = _chain_report(conn)
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


def _chain_report(conn: Connection) -> ChainReport:
    checked, bad, reason = audit.verify_chain(conn)
    return ChainReport(checked, bad.seq if bad else None, reason)
