"""Who is calling: the principal of the request's bearer token, never a request field."""

from __future__ import annotations

from fastapi import Request

from modelyard.domain.principal import Principal
from modelyard.errors import ModelyardError, PermissionDenied, Unauthenticated
from modelyard.services.access import authenticate, record_refusal
from modelyard.storage.sql.database import Database

SCHEME = "bearer"


def principal_of(request: Request, db: Database) -> Principal:
    """The principal of ``Authorization: Bearer <token>``; Unauthenticated without one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != SCHEME or not token.strip():
        raise Unauthenticated("this server needs a token",
                              hint="send 'Authorization: Bearer <token>' (set MODELYARD_TOKEN); "
                                   "an admin makes one with 'modelyard tokens create'")
    return authenticate(db, token.strip())


def audit_refusal(db: Database, error: ModelyardError, operation: str,
                  principal: Principal | None) -> None:
    """Record a refused change (401/403) in the audit log; reads are not recorded, so an
    anonymous scan of the API cannot flood the chain."""
    if isinstance(error, Unauthenticated | PermissionDenied):
        reason = str(error.details.get("reason") or error.code)
        record_refusal(db, operation=operation, reason=reason,
                       user=principal.user if principal else None)
