"""Issue 9, findings 6 and 7: a signed checkpoint catches what a database administrator can do
without any secret: rewrite the chain with recomputed hashes, or cut its tail together with
``registry_state``; and a forged checkpoint or the wrong key is refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from test_tamper import rewrite_events
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.errors import AlreadyExists, IntegrityError, InvalidInput
from modelyard.services import checkpoints
from modelyard.services.registry import Registry


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "keys").mkdir()
    return checkpoints.generate_key(tmp_path / "keys" / "audit.key")


@pytest.fixture
def history(reg: Registry, tmp_path: Path) -> Registry:
    """Five events: fraud v1 registered, staged; an alias; a tag."""
    (tmp_path / "w.bin").write_bytes(b"weights")
    reg.register("fraud", tmp_path / "w.bin")
    reg.transition("fraud", 1, "staging")
    reg.set_alias("fraud", "champion", 1)
    reg.set_tag("fraud", "team", "risk")
    return reg


def test_keygen_writes_a_private_key_only_its_owner_reads(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public == private.with_name("audit.key.pub")
    assert b"PUBLIC KEY" in public.read_bytes()
    with pytest.raises(AlreadyExists):
        checkpoints.generate_key(private)
    assert [p.name for p in private.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_an_untouched_log_extends_its_checkpoint(
    history: Registry, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    signed = history.audit_checkpoint(private, output=tmp_path / "cp.json")
    assert signed.seq == 5 and signed.format_version == 1
    history.set_tag("fraud", "later", "yes")  # the log grows after the checkpoint
    report = history.verify_audit(tmp_path / "cp.json", public_key=public)
    assert report.ok and report.checkpoint is not None and report.checkpoint.ok
    assert report.to_dict()["checkpoint"]["seq"] == 5


def test_a_chain_rewritten_with_recomputed_hashes_fails_the_checkpoint(
    history: Registry, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    history.audit_checkpoint(private, output=tmp_path / "cp.json")
    rewrite_events(history, lambda e: {**e, "actor": "mallory"} if e["seq"] == 2 else e)
    assert history.verify_audit().ok  # the plain check is fooled: every hash fits
    report = history.verify_audit(tmp_path / "cp.json", public_key=public)
    assert not report.ok and report.chain_ok and report.checkpoint is not None
    assert "event 5 has hash" in report.checkpoint.reason
    assert "rewritten since the checkpoint" in report.checkpoint.reason


def test_a_tail_cut_with_registry_state_fails_the_checkpoint(
    history: Registry, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """Also what a crash that loses the WAL tail looks like (finding 6)."""
    private, public = keys
    history.audit_checkpoint(private, output=tmp_path / "cp.json")
    rewrite_events(history, lambda e: e, drop_after=3)  # tag and alias events gone, head moved
    plain = history.verify_audit()
    assert plain.chain_ok  # the chain that is left is consistent with its head
    report = history.verify_audit(tmp_path / "cp.json", public_key=public)
    assert report.checkpoint is not None and not report.checkpoint.ok
    assert report.checkpoint.reason == ("the log ends at event 3 but the checkpoint was taken at "
                                        "event 5: events were removed from its tail")


def test_a_forged_checkpoint_or_the_wrong_key_is_refused(
    history: Registry, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    history.audit_checkpoint(private, output=tmp_path / "cp.json")
    document = json.loads((tmp_path / "cp.json").read_text())
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**document, "seq": 3}))
    with pytest.raises(IntegrityError, match="does not verify"):
        history.verify_audit(forged, public_key=public)
    (tmp_path / "other").mkdir()
    _, other_public = checkpoints.generate_key(tmp_path / "other" / "k")
    with pytest.raises(IntegrityError, match="signed by key ed25519:"):
        history.verify_audit(tmp_path / "cp.json", public_key=other_public)
    # a mallory who signs with her own key and swaps in her key id is still refused
    mallory, _ = checkpoints.generate_key(tmp_path / "other" / "mallory")
    own = history.audit_checkpoint(mallory)
    with pytest.raises(IntegrityError):
        history.verify_audit(own, public_key=public)


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"format": "modelyard-audit-checkpoint", "format_version": 1}',
    '{"format": "modelyard-audit-checkpoint", "format_version": 9}',
])
def test_a_malformed_checkpoint_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    with pytest.raises(InvalidInput) as caught:
        checkpoints.read_checkpoint(path)
    assert caught.value.hint


def test_no_checkpoint_is_signed_over_a_tampered_log(
    history: Registry, keys: tuple[Path, Path]
) -> None:
    with history.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE model_versions SET stage = 'archived'")
    with pytest.raises(IntegrityError, match="refusing to checkpoint"):
        history.audit_checkpoint(keys[0])


def test_cli_keygen_checkpoint_and_verify(
    history: Registry, registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELYARD_REGISTRY_URI", registry_url)
    monkeypatch.delenv("MODELYARD_AUDIT_KEY", raising=False)
    monkeypatch.delenv("MODELYARD_AUDIT_PUBLIC_KEY", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    key = tmp_path / "audit.key"
    made = json.loads(run("audit", "keygen", str(key), "--json").stdout)
    assert made["public_key"] == f"{key}.pub" and made["key_id"].startswith("ed25519:")
    assert "no audit key" in run("audit", "checkpoint", code=1).stderr
    monkeypatch.setenv("MODELYARD_AUDIT_KEY", str(key))
    cp = tmp_path / "cp.json"
    assert "wrote the checkpoint of event 5" in run("audit", "checkpoint", "-o", str(cp)).stdout
    printed = json.loads(run("audit", "checkpoint").stdout)  # no -o: the document itself
    assert printed["seq"] == 5 and printed["signature"]
    ok = run("audit", "verify", "--checkpoint", str(cp), "--public-key", f"{key}.pub")
    assert "extends the checkpoint at event 5" in " ".join(ok.stdout.split())  # any width

    rewrite_events(history, lambda e: {**e, "comment": "nothing to see"})
    assert "audit chain intact" in run("audit", "verify").stdout
    failed = run("audit", "verify", "--checkpoint", str(cp), code=1)  # key from the setting
    assert "the log does not extend the checkpoint at event 5" in failed.stderr
    assert "hint:" in failed.stderr
    report = json.loads(run("audit", "verify", "--checkpoint", str(cp), "--json", code=1).stdout)
    assert report["checkpoint"]["ok"] is False and report["chain_ok"] is True

    assert "does not exist" in run("audit", "verify", "--checkpoint", str(tmp_path / "no"),
                                   code=1).stderr
    assert run("audit", "fraud", "--checkpoint", str(cp), code=2).exit_code == 2
