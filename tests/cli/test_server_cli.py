"""``modelyard server`` refuses what it cannot serve before it listens."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelyard.cli.main import app


def test_a_server_url_is_not_a_database_to_serve() -> None:
    result = CliRunner().invoke(app, ["server", "--registry", "http://elsewhere:8080"])
    assert result.exit_code == 1
    assert "is a server" in result.stderr and "Traceback" not in result.output


def test_webhook_settings_that_cannot_work_are_refused_before_it_listens(
        tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["server", "--registry", f"sqlite:///{tmp_path / 'r.db'}"],
        env={"MODELYARD_WEBHOOK_TIMEOUT": "10", "MODELYARD_WEBHOOK_LEASE": "20"})
    assert result.exit_code == 1
    assert "MODELYARD_WEBHOOK_LEASE (20s)" in result.stderr and "serving" not in result.stderr
