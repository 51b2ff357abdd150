"""``modelyard server`` refuses what it cannot serve before it listens."""

from __future__ import annotations

from typer.testing import CliRunner

from modelyard.cli.main import app


def test_a_server_url_is_not_a_database_to_serve() -> None:
    result = CliRunner().invoke(app, ["server", "--registry", "http://elsewhere:8080"])
    assert result.exit_code == 1
    assert "is a server" in result.stderr and "Traceback" not in result.output
