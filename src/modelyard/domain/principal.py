"""Who is calling: a principal (a user and roles) and what each role may do.

The caller's identity is never a free string the caller picks. Embedded mode builds the
principal from settings (``user=``, ``MODELYARD_USER``, the OS user) and grants every role,
as a single-user tool should; a server builds it from a token. ``actor=`` on a mutating
call means "on behalf of": only an admin may use it, and the audit log records both names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from modelyard.errors import InvalidInput, PermissionDenied

SYSTEM_USER = "modelyard"  # records what the registry itself decides (failed gates)
USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}", re.ASCII)  # e-mail-like names too


class Permission(StrEnum):
    READ = "read"  # see models, versions, runs, audit
    CONTRIBUTE = "contribute"  # register, tag, alias, move stages, request, track runs and data
    REVIEW = "review"  # approve or reject promotion requests
    ADMIN = "admin"  # policies, deletion, acting on behalf of others


class Role(StrEnum):
    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    REVIEWER = "reviewer"
    ADMIN = "admin"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.CONTRIBUTOR: frozenset({Permission.READ, Permission.CONTRIBUTE}),
    Role.REVIEWER: frozenset({Permission.READ, Permission.CONTRIBUTE, Permission.REVIEW}),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True)
class Actor:
    """Whom an audited change is recorded for, and who actually made the call."""

    user: str
    via: str | None = None  # the admin acting on behalf of ``user``; None when acting alone


@dataclass(frozen=True)
class Principal:
    user: str
    roles: frozenset[Role]

    @classmethod
    def embedded(cls, user: str) -> Principal:
        """The single user of an embedded registry: every role."""
        return cls(check_user(user), frozenset(Role))

    @property
    def permissions(self) -> frozenset[Permission]:
        return frozenset().union(*(ROLE_PERMISSIONS[r] for r in self.roles))

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission, what: str) -> None:
        if not self.can(permission):
            roles = ", ".join(sorted(self.roles)) or "no role"
            raise PermissionDenied(
                f"{self.user} ({roles}) may not {what}: it needs the {permission} permission",
                hint="ask an admin for a role that grants it",
                user=self.user, permission=str(permission),
            )

    def acting_for(self, actor: str | None) -> Actor:
        """The actor a change is recorded for: the principal, or someone an admin acts for."""
        if actor is None or actor == self.user:
            return Actor(self.user)
        who = check_user(actor)
        if not self.can(Permission.ADMIN):
            raise PermissionDenied(
                f"{self.user} may not act on behalf of {who!r}",
                hint="only an admin may pass actor=; omit it to act as yourself",
                user=self.user, actor=who,
            )
        if who == SYSTEM_USER:
            raise InvalidInput(f"{SYSTEM_USER!r} is reserved for the registry's own decisions")
        return Actor(who, via=self.user)


def check_user(user: str) -> str:
    """A user name: 1-128 of letters, digits and ``. _ @ + -``, matched in full."""
    name = user or ""
    if not name.strip():
        raise InvalidInput("no acting user: pass user= or set MODELYARD_USER")
    if not USER_RE.fullmatch(name):
        raise InvalidInput(
            f"invalid user name {name!r}: use 1-128 letters, digits, '.', '_', '@', '+' or "
            "'-', starting with a letter or digit", hint="set MODELYARD_USER", user=name)
    return name
