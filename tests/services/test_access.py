"""Users, roles and tokens on SQLite and PostgreSQL: who a token authenticates as, every way
one is refused, what is stored (never the secret), and that the audit log still verifies."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from modelyard.domain.access import TokenStatus, split_token
from modelyard.domain.principal import ROLE_PERMISSIONS, Permission, Principal, Role
from modelyard.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from modelyard.services.access import (
    REFUSED,
    Access,
    TokenRefused,
    authenticate,
    init_admin,
    record_refusal,
)
from modelyard.services.base import Context
from modelyard.services.registry import Registry
from modelyard.storage.content.hashing import hash_bytes
from modelyard.storage.sql.access_schema import tokens


class Clock:
    """A clock the test moves by hand; each reading is a millisecond after the last, so
    things made one after another sort in that order."""

    def __init__(self) -> None:
        self.now = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def admin(reg: Registry, clock: Clock) -> tuple[Access, str]:
    """The registry bootstrapped with admin 'root': root's use cases and token."""
    _, token = init_admin(reg.db, "root", clock=clock)
    return _as(reg, token, clock), token


def _as(reg: Registry, token: str, clock: Clock) -> Access:
    """Access as the principal ``token`` authenticates, as a server would build it."""
    principal = authenticate(reg.db, token, clock=clock)
    return Access(Context(reg.db, reg.store, principal, clock))


def _refusal(reg: Registry, token: str, clock: Clock) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        authenticate(reg.db, token, clock=clock)
    return caught.value


def _last_used(reg: Registry, token_id: str) -> datetime | None:
    with reg.db.read() as conn:
        value: datetime | None = conn.execute(
            select(tokens.c.last_used_at).where(tokens.c.id == token_id)).scalar_one()
    return value


def test_a_token_authenticates_as_its_user_with_the_role_they_have_now(
    reg: Registry, admin: tuple[Access, str], clock: Clock
) -> None:
    root, _ = admin
    user, token = root.create_user("cy", "contributor")
    assert (user.name, user.role, user.created_by, user.disabled) == (
        "cy", Role.CONTRIBUTOR, "root", False)
    assert authenticate(reg.db, token, clock=clock) == Principal("cy", frozenset({
        Role.CONTRIBUTOR}))
    root.set_role("cy", Role.REVIEWER)
    assert authenticate(reg.db, token, clock=clock).roles == {Role.REVIEWER}
    assert token.startswith("myd_") and split_token(token) is not None


def test_each_refusal_is_one_generic_401_and_keeps_its_reason_for_the_audit(
    reg: Registry, admin: tuple[Access, str], clock: Clock
) -> None:
    root, root_token = admin
    _, cy_token = root.create_user("cy", "contributor")
    expiring, expiring_token = root.create_token("short", expires=timedelta(hours=1), user="cy")
    revoked, revoked_token = root.create_token("old", user="cy")
    root.revoke_token(revoked.id)
    _, ed_token = root.create_user("ed", "viewer")
    root.disable_user("ed")
    token_id, secret = split_token(cy_token) or ("", "")
    other_secret = (split_token(root_token) or ("", ""))[1]
    clock.advance(hours=2)
    cases = {
        "": "malformed", "Bearer " + cy_token: "malformed", cy_token + "x": "malformed",
        cy_token.replace("myd_", "xyz_"): "malformed", cy_token[:-1]: "malformed",
        cy_token.upper(): "malformed",
        f"myd_{'0' * 12}_{secret}": "unknown",
        f"myd_{token_id}_{other_secret}": "wrong secret",
        expiring_token: "expired",
        revoked_token: "revoked",
        ed_token: "user disabled",
    }
    bodies = set()
    for token, reason in cases.items():
        refused = _refusal(reg, token, clock)
        assert isinstance(refused, Unauthenticated) and refused.http_status == 401
        assert refused.details["reason"] == reason, token
        assert refused.message == REFUSED
        body = refused.to_dict()["error"]
        assert body["details"] == {}  # the wire body says nothing about which check failed
        bodies.add((body["code"], body["message"], body["hint"]))
    assert len(bodies) == 1
    assert _refusal(reg, revoked_token, clock).details == {
        "reason": "revoked", "token": revoked.id, "user": "cy"}
    assert [t.status for t in root.list_tokens("cy") if t.id == expiring.id] == ["expired"]
    assert authenticate(reg.db, cy_token, clock=clock).user == "cy"  # the good one still works


def test_last_use_is_written_at_most_once_a_minute(
    reg: Registry, admin: tuple[Access, str], clock: Clock
) -> None:
    root, _ = admin
    token, secret = root.create_token("ci")
    assert _last_used(reg, token.id) is None
    authenticate(reg.db, secret, clock=clock)
    first = _last_used(reg, token.id)
    assert first == clock.now
    clock.advance(seconds=59)
    authenticate(reg.db, secret, clock=clock)
    assert _last_used(reg, token.id) == first
    clock.advance(seconds=1)
    authenticate(reg.db, secret, clock=clock)
    latest = _last_used(reg, token.id)
    assert latest == clock.now
    assert [t.last_used_at for t in root.list_tokens() if t.id == token.id] == [latest]


def test_the_plaintext_token_is_never_stored(
    reg: Registry, registry_url: str, admin: tuple[Access, str], clock: Clock, tmp_path: Path
) -> None:
    root, root_token = admin
    _, cy_token = root.create_user("cy", "contributor")
    made, ci_token = root.create_token("ci", user="cy", expires="30d")
    root.revoke_token(made.id)
    plaintexts = [root_token, cy_token, ci_token]
    secrets = [(split_token(t) or ("", ""))[1] for t in plaintexts]
    hashes = [hash_bytes(s.encode()) for s in secrets]
    with reg.db.read() as conn:
        stored = {str(row.secret_hash) for row in conn.execute(select(tokens))}
        events = [str(row) for row in conn.execute(text("SELECT * FROM audit_events"))]
    assert stored == set(hashes)  # only the hash is kept, and it is what authenticates
    for event in events:  # the audit log has neither the secret nor its hash
        assert not any(s in event for s in [*secrets, *hashes]), event
    if registry_url.startswith("sqlite"):
        reg.close()  # flush the WAL into the file; read every byte the database wrote
        database = Path(registry_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert hashes[0].encode() in raw
        assert not any(s.encode() in raw for s in secrets)
    else:
        with reg.db.read() as conn:
            dump = " ".join(str(row) for table in ("users", "tokens", "audit_events")
                            for row in conn.execute(text(f"SELECT * FROM {table}")))
        assert not any(s in dump for s in secrets)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_gives_exactly_its_permissions(
    reg: Registry, admin: tuple[Access, str], clock: Clock, role: Role
) -> None:
    root, _ = admin
    _, token = root.create_user(f"u-{role.value}", role)
    principal = authenticate(reg.db, token, clock=clock)
    assert principal.permissions == ROLE_PERMISSIONS[role]
    own = _as(reg, token, clock)
    assert own.create_token("mine")[0].user == f"u-{role.value}"  # anyone: for themselves
    assert [t.name for t in own.list_tokens()] == ["", "mine"]
    if Permission.ADMIN in ROLE_PERMISSIONS[role]:
        assert [u.name for u in own.list_users()] == ["root", "u-admin"]
    else:
        with pytest.raises(PermissionDenied, match="admin"):
            own.list_users()


def test_a_contributor_manages_only_their_own_tokens(
    reg: Registry, admin: tuple[Access, str], clock: Clock
) -> None:
    root, _ = admin
    _, cy_token = root.create_user("cy", "contributor")
    cy = _as(reg, cy_token, clock)
    for refused in (lambda: cy.create_user("mallory", "admin"),
                    lambda: cy.set_role("cy", "admin"),
                    lambda: cy.disable_user("root"),
                    lambda: cy.create_token("x", user="root"),
                    lambda: cy.list_tokens("root")):
        with pytest.raises(PermissionDenied):
            refused()
    roots = root.list_tokens()
    with pytest.raises(PermissionDenied, match="another user's token"):
        cy.revoke_token(roots[0].id)
    mine, _ = cy.create_token("laptop", expires="2027-06-01")
    assert mine.expires_at == datetime(2027, 6, 1, tzinfo=UTC)
    assert cy.list_tokens("cy")[-1].id == mine.id
    assert cy.revoke_token(mine.id).status is TokenStatus.REVOKED
    with pytest.raises(InvalidTransition, match="already revoked"):
        cy.revoke_token(mine.id)
    assert root.revoke_token(cy.list_tokens()[0].id).user == "cy"  # an admin revokes anyone's
    assert [t.status for t in root.list_tokens("cy")] == [TokenStatus.REVOKED] * 2
    assert [t.status for t in root.list_tokens()] == [TokenStatus.ACTIVE]


def test_init_admin_works_once_only_and_the_system_name_is_reserved(
    reg: Registry, clock: Clock
) -> None:
    for reserved in ("modelyard", "Modelyard"):
        with pytest.raises(InvalidInput, match="reserved"):
            init_admin(reg.db, reserved, clock=clock)
    results: list[str] = []

    def bootstrap(name: str) -> None:
        try:
            init_admin(reg.db, name, clock=clock)
            results.append(name)
        except InvalidTransition:
            results.append("refused")

    threads = [threading.Thread(target=bootstrap, args=(f"admin{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and results.count("refused") == 3
    winner = next(r for r in results if r != "refused")
    with pytest.raises(InvalidTransition, match="already has users"):
        init_admin(reg.db, "late", clock=clock)
    first = reg.audit()[0]
    assert (first.actor, first.action, first.after) == (
        "modelyard", "user.create", {"user": winner, "role": "admin"})
    root = Access(reg.ctx)  # the embedded principal (every role) may add users too
    with pytest.raises(InvalidInput, match="reserved"):
        root.create_user("modelyard", "viewer")
    with pytest.raises(AlreadyExists):
        root.create_user(winner, "viewer")
    with pytest.raises(InvalidInput, match="unknown role"):
        root.create_user("x", "superuser")


def test_a_disabled_users_tokens_stop_working_and_the_last_admin_stays(
    reg: Registry, admin: tuple[Access, str], clock: Clock
) -> None:
    root, root_token = admin
    _, ed_token = root.create_user("ed", "reviewer")
    root.create_token("ci", user="ed")
    assert root.disable_user("ed").disabled
    assert _refusal(reg, ed_token, clock).details["reason"] == "user disabled"
    assert {t.status for t in root.list_tokens("ed")} == {TokenStatus.DISABLED}
    with pytest.raises(InvalidTransition, match="disabled"):
        root.create_token("new", user="ed")
    with pytest.raises(InvalidTransition, match="already disabled"):
        root.disable_user("ed")
    with pytest.raises(InvalidTransition, match="last enabled admin"):
        root.disable_user("root")
    with pytest.raises(InvalidTransition, match="last enabled admin"):
        root.set_role("root", "viewer")
    root.create_user("ann", "admin")
    assert root.set_role("root", "viewer").role is Role.VIEWER  # another admin remains
    assert authenticate(reg.db, root_token, clock=clock).roles == {Role.VIEWER}
    with pytest.raises(NotFound, match="did you mean 'ed'"):
        Access(reg.ctx).set_role("edd", "viewer")


def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    reg: Registry, admin: tuple[Access, str], clock: Clock
) -> None:
    root, _ = admin
    root.create_user("ann", "admin")
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(name: str) -> None:
        start.wait()
        try:
            root.set_role(name, "viewer")
            outcomes.append("demoted")
        except InvalidTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=demote, args=(n,)) for n in ("root", "ann")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["demoted", "refused"]
    assert [u.role for u in Access(reg.ctx).list_users()].count(Role.ADMIN) == 1


def test_every_change_is_audited_without_secrets_and_verify_still_passes(
    reg: Registry, admin: tuple[Access, str], clock: Clock, model_dir: Path
) -> None:
    root, _ = admin
    reg.register("m", model_dir)  # the replay of models sits beside identity events
    _, cy_token = root.create_user("cy", "contributor")
    made, _ = root.create_token("ci", user="cy", expires="30d")
    root.set_role("cy", "reviewer")
    root.revoke_token(made.id)
    root.disable_user("cy")
    refused = _refusal(reg, cy_token, clock)
    record_refusal(reg.db, operation="register", reason=refused.details["reason"],
                   user=refused.details.get("user"), clock=clock)
    record_refusal(reg.db, operation="list_models", reason="malformed", clock=clock)
    events = [e for e in reg.audit() if e.model is None]
    assert [(e.actor, e.action) for e in events] == [
        ("modelyard", "user.create"), ("modelyard", "token.create"),
        ("root", "user.create"), ("root", "token.create"), ("root", "token.create"),
        ("root", "user.role"), ("root", "token.revoke"), ("root", "user.disable"),
        ("modelyard", "access.denied"), ("modelyard", "access.denied")]
    fingerprint = (events[4].after or {}).pop("fingerprint")  # of the stored hash
    assert events[4].after == {"user": "cy", "token": made.id, "name": "ci",
                               "expires_at": made.expires_at.isoformat() if made.expires_at else ""}
    assert fingerprint.startswith("blake3:") and fingerprint.split(":")[1] not in cy_token
    assert (events[5].before, events[5].after) == ({"user": "cy", "role": "contributor"},
                                                   {"user": "cy", "role": "reviewer"})
    assert [e.after for e in events[-2:]] == [
        {"user": "cy", "operation": "register", "reason": "user disabled"},
        {"user": None, "operation": "list_models", "reason": "malformed"}]
    report = reg.verify_audit()
    assert report.ok, report.problems()


def test_users_and_tokens_page(reg: Registry, admin: tuple[Access, str]) -> None:
    root, _ = admin
    for name in ("b", "d", "f", "h"):
        root.create_user(name, "viewer")
    first = root.list_users(max_results=3)
    assert [u.name for u in first] == ["b", "d", "f"]
    rest = root.list_users(max_results=3, page_token=first.next_page_token)
    assert [u.name for u in rest] == ["h", "root"] and rest.next_page_token is None
    made = [root.create_token(f"t{i}")[0].id for i in range(3)]
    page = root.list_tokens(max_results=2)
    after = root.list_tokens(max_results=2, page_token=page.next_page_token)
    assert [t.id for t in [*page, *after]][1:] == made  # the first is root's initial token
    with pytest.raises(InvalidInput, match="page token"):
        root.list_tokens(page_token=first.next_page_token)  # a users token is not a tokens one


def test_bad_expiries_names_and_ids_are_refused(admin: tuple[Access, str]) -> None:
    root, _ = admin
    for expires in ("yesterday", "0d", "2020-01-01", timedelta(seconds=-1)):
        with pytest.raises(InvalidInput):
            root.create_token("x", expires=expires)
    with pytest.raises(InvalidInput, match="token name"):
        root.create_token("a\nb")
    with pytest.raises(InvalidInput, match="token id"):
        root.revoke_token("../etc")
    with pytest.raises(NotFound):
        root.revoke_token("0" * 12)
    with pytest.raises(NotFound, match="user 'nobody'"):
        root.create_token("x", user="nobody")
