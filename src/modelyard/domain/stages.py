"""The lifecycle stage machine: one explicit table, nothing implicit.

A move not listed in ``TRANSITIONS`` is refused with ``InvalidTransition``. Promotion to
production archives the previous production version (a side effect the service applies in
the same transaction); rollback is a separate action because it is the only way back
from ``archived`` to ``production`` and only for a version that held production before.
"""

from __future__ import annotations

from enum import StrEnum

from modelyard.errors import InvalidInput, InvalidTransition


class Stage(StrEnum):
    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.NONE: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.NONE, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.STAGING, Stage.NONE}),
}

# Rollback: archived -> production, allowed only for a version that once held production.
ROLLBACK_FROM = Stage.ARCHIVED


def parse_stage(text: str) -> Stage:
    try:
        return Stage(str(text).strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in Stage)
        raise InvalidInput(f"unknown stage {text!r}: expected one of {names}") from None


def check_transition(current: Stage, target: Stage, *, subject: str) -> None:
    """Raise ``InvalidTransition`` unless the table allows ``current -> target``."""
    if target in TRANSITIONS[current]:
        return
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "nothing"
    hint = None
    if current is Stage.ARCHIVED and target is Stage.PRODUCTION:
        hint = "use 'modelyard rollback NAME --to VERSION' to bring back a former production"
    elif current is Stage.NONE and target is Stage.PRODUCTION:
        hint = "move it to staging first"
    raise InvalidTransition(
        f"{subject} cannot move from {current.value} to {target.value}; "
        f"from {current.value} it can go to: {allowed}",
        hint=hint,
        current=current.value,
        target=target.value,
    )
