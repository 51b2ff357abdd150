"""Random register/transition/rollback/alias/delete sequences keep the invariants.

After every step: at most one production version; version numbers dense and unique
(deleted ones included); and replaying the audit log gives the current stages and aliases.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select

from modelyard.errors import InvalidInput, InvalidTransition, NotFound
from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database
from modelyard.storage.sql.schema import model_versions

STAGES = st.sampled_from(["none", "staging", "production", "archived"])
VERSIONS = st.integers(min_value=1, max_value=6)
ALIASES = st.sampled_from(["champion", "challenger"])


def make_machine(
    url_factory: Callable[[Path], str], release: Callable[[str], None] = lambda url: None
) -> type[RuleBasedStateMachine]:
    class LifecycleMachine(RuleBasedStateMachine):
        @initialize()
        def open(self) -> None:
            self.tmp = tempfile.TemporaryDirectory()
            root = Path(self.tmp.name)
            self.url = url_factory(root)
            self.reg = Registry(Database(self.url), ObjectStore(str(root / "objects")), user="u")
            self.artifact = root / "m.bin"
            self.artifact.write_bytes(b"weights")
            self.registered = 0
            self.reg.create_model("m")  # lifecycle mechanics here; approvals: tests/governance/
            self.reg.set_policy("m", approvals=0)

        def teardown(self) -> None:
            if hasattr(self, "reg"):
                self.reg.close()
                self.tmp.cleanup()
                release(self.url)

        @rule()
        def register(self) -> None:
            version = self.reg.register("m", self.artifact)
            self.registered += 1
            assert version.version == self.registered

        @rule(version=VERSIONS, stage=STAGES)
        def transition(self, version: int, stage: str) -> None:
            with contextlib.suppress(InvalidTransition, NotFound):
                self.reg.transition("m", version, stage)

        @rule(to=st.none() | VERSIONS)
        def rollback(self, to: int | None) -> None:
            with contextlib.suppress(InvalidTransition, NotFound):
                self.reg.rollback("m", to=to)

        @rule(alias=ALIASES, version=VERSIONS)
        def set_alias(self, alias: str, version: int) -> None:
            with contextlib.suppress(NotFound):
                self.reg.set_alias("m", alias, version)

        @rule(alias=ALIASES)
        def delete_alias(self, alias: str) -> None:
            with contextlib.suppress(NotFound):
                self.reg.delete_alias("m", alias)

        @rule(version=VERSIONS)
        def delete(self, version: int) -> None:
            with contextlib.suppress(InvalidTransition, NotFound, InvalidInput):
                self.reg.delete_version("m", version)

        @invariant()
        def invariants_hold(self) -> None:
            if not self.registered:
                return
            with self.reg.db.read() as conn:
                numbers = sorted(conn.execute(select(model_versions.c.version)).scalars())
            assert numbers == list(range(1, self.registered + 1))
            live = self.reg.list_versions("m")
            production = [v.version for v in live if v.stage == "production"]
            assert len(production) <= 1
            state = self.reg.history("m")
            assert state.stages == {v.version: v.stage for v in live}
            assert state.aliases == {a: v.version for v in live for a in v.aliases}
            assert state.production == (production[0] if production else None)

    return LifecycleMachine


MACHINE_SETTINGS = settings(
    max_examples=12, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_lifecycle_invariants_sqlite() -> None:
    machine = make_machine(lambda root: f"sqlite:///{root / 'r.db'}")
    machine.TestCase.settings = MACHINE_SETTINGS
    machine.TestCase().runTest()


@pytest.mark.postgres
def test_lifecycle_invariants_postgres(pg_databases: object) -> None:
    machine = make_machine(lambda root: pg_databases.fresh(),  # type: ignore[attr-defined]
                           pg_databases.release)  # type: ignore[attr-defined]
    machine.TestCase.settings = MACHINE_SETTINGS
    machine.TestCase().runTest()
