"""Every CLI command and option is documented: a new one fails this test until README says it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from modelyard.cli.main import app

README = (Path(__file__).parents[1] / "README.md").read_text()


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(path, command) for every leaf command; typer vendors click, so duck-type groups."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


ROOT: Any = typer.main.get_command(app)
for _name in ROOT.list_commands(None):  # commands load lazily: materialise every one
    ROOT.get_command(None, _name)
COMMANDS = sorted(_commands(ROOT), key=lambda item: item[0])


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_is_in_the_readme(path: str, command: Any) -> None:
    assert re.search(rf"`(modelyard )?{re.escape(path)}\b", README), (
        f"'modelyard {path}' is not documented in README.md"
    )
    assert command.help, f"'modelyard {path}' has no --help text"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_options_are_in_the_readme(path: str, command: Any) -> None:
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option" and not param.hidden:
            names = [n for n in (*param.opts, *param.secondary_opts) if n != "--help"]
            assert any(re.search(rf"{re.escape(n)}\b", README) for n in names), (
                f"option {names[0]} of 'modelyard {path}' is not documented in README.md"
            )
