"""Scenario 12: how long a command-line call takes, start to exit, as a user waits for it.

Modelyard: ``--help``, ``versions show NAME 1`` and ``models list`` on an embedded registry
holding one version (built untimed). DVC: ``--version`` and ``--help``; MLflow: ``--version``
and ``--help``. Rows with the same phase (``--help``) get a ratio. Bytecode is written on
the warm-up run and used after, as on an installed machine (the harness's environment may
say ``PYTHONDONTWRITEBYTECODE``, which would re-compile Modelyard's sources on every run).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench import anchors
from bench.harness import Case, Context, Step, Steps, run_process, tool_env

MODEL = "bench-model"


def _step(argv: Sequence[str], cwd: Path, **env: str) -> Step:
    environment = tool_env(**env)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return Step(lambda _run: list(argv), cwd, environment)


def cases(ctx: Context) -> list[Case]:
    ours = Path(sys.executable).with_name("modelyard")

    @contextmanager
    def modelyard() -> Iterator[Steps]:
        work = ctx.scratch("s12", "modelyard")
        home = work / "home"
        model = work / "model"
        model.mkdir()
        (model / "weights.bin").write_bytes(b"\0" * 4096)
        env = {"MODELYARD_HOME": str(home), "MODELYARD_USER": "bench"}
        run_process([str(ours), "register", MODEL, str(model)], work, tool_env(**env))
        yield {
            "--help": _step([str(ours), "--help"], work, **env),
            f"versions show {MODEL} 1": _step([str(ours), "versions", "show", MODEL, "1"], work,
                                              **env),
            "models list": _step([str(ours), "models", "list"], work, **env),
        }

    def anchor(tool: str, phases: Sequence[str]) -> Case:
        @contextmanager
        def session() -> Iterator[Steps]:
            work = ctx.scratch("s12", tool)
            exe = str(anchors.executable(tool, ctx.anchors_venv))
            yield {phase: _step([exe, phase], work) for phase in phases}
        return Case("12", tool, tool, session)

    return [Case("12", "modelyard", "modelyard", modelyard),
            anchor("dvc", ("--version", "--help")), anchor("mlflow", ("--version", "--help"))]
