"""One exception hierarchy for every face of Modelyard.

Each class carries a stable machine-readable ``code`` and the HTTP status a server
answers with, so the CLI, the REST API and the HTTP client all speak the same errors.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ModelyardError(Exception):
    """Base class: a failure the user can understand and act on."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"

    def to_dict(self) -> dict[str, Any]:
        """The REST (and ``--json``) error body: ``{"error": {"code", "message", "hint",
        "details"}}``; ``hint`` is ``None`` when there is nothing to suggest."""
        return {"error": {"code": self.code, "message": self.message, "hint": self.hint,
                          "details": dict(self.details)}}


class NotFound(ModelyardError):
    code = "not_found"
    http_status = 404


class AlreadyExists(ModelyardError):
    code = "already_exists"
    http_status = 409


class InvalidInput(ModelyardError):
    code = "invalid_input"
    http_status = 400


class InvalidTransition(ModelyardError):
    code = "invalid_transition"
    http_status = 409


class ApprovalRequired(ModelyardError):
    code = "approval_required"
    http_status = 409


class PermissionDenied(ModelyardError):
    code = "permission_denied"
    http_status = 403


class Unauthenticated(ModelyardError):
    code = "unauthenticated"
    http_status = 401


class IntegrityError(ModelyardError):
    """Stored content does not match its digest, or the audit chain is broken."""

    code = "integrity_error"
    http_status = 500


class StorageUnavailable(ModelyardError):
    """The metadata database or the object store cannot be reached or is not set up."""

    code = "storage_unavailable"
    http_status = 503


ALL_ERRORS: tuple[type[ModelyardError], ...] = (
    NotFound,
    AlreadyExists,
    InvalidInput,
    InvalidTransition,
    ApprovalRequired,
    PermissionDenied,
    Unauthenticated,
    IntegrityError,
    StorageUnavailable,
)


def error_class_for(code: str) -> type[ModelyardError]:
    """Map a wire ``code`` back to its class (used by the HTTP client)."""
    for cls in ALL_ERRORS:
        if cls.code == code:
            return cls
    return ModelyardError
