"""Scenarios 1 to 4: data versioning, ``modelyard data`` against DVC, each in its own git repo.

Both tools get the same commands on the same files, timed as whole processes (what a
user waits for). Every run starts from state built untimed: a fresh repository with the
data hard-linked in (``datagen.link_copy``), or, for status and re-add, a repository
where the data is already tracked.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import anchors, datagen
from bench.harness import Case, Context, Step, Steps, discard, empty_dir, run_process, tool_env

DATA_MISSING = "modelyard data is not available in this build"


@dataclass(frozen=True)
class DataTool:
    """How one tool spells each data command (argv after the executable)."""

    name: str
    algo: str
    exe: Path
    init: tuple[tuple[str, ...], ...]  # after ``git init``
    remote_add: tuple[str, ...]  # followed by the remote folder
    add: tuple[str, ...]
    status: tuple[str, ...]
    push: tuple[str, ...]
    pull: tuple[str, ...]
    local_state: tuple[str, ...]  # cache and hash state, dropped before a pull
    remote_state: tuple[str, ...]  # what remembers the remote's contents, dropped before a push


def modelyard_tool() -> DataTool:
    state = (".modelyard/state.db", ".modelyard/state.db-wal", ".modelyard/state.db-shm")
    return DataTool(
        "modelyard", "blake3", Path(sys.executable).with_name("modelyard"),
        init=(("data", "init"),), remote_add=("data", "remote", "add", "--default", "bench"),
        add=("data", "add"), status=("data", "status"), push=("data", "push"),
        pull=("data", "pull"), local_state=(".modelyard/cache", *state), remote_state=state,
    )


def dvc_tool(venv: Path) -> DataTool:
    return DataTool(
        "dvc", "md5", anchors.executable("dvc", venv),
        init=(("init", "-q"), ("config", "core.analytics", "false"),
              # hash state and remote index inside the repo, so no run inherits another's
              ("config", "core.site_cache_dir", ".dvc-site")),
        remote_add=("remote", "add", "-d", "bench"),
        add=("add", "-q"), status=("status", "-q"), push=("push", "-q"), pull=("pull", "-q"),
        local_state=(".dvc/cache", ".dvc-site"), remote_state=(".dvc-site",),
    )


class Repo:
    """One tool's git repository plus a local-folder remote, rebuilt on demand."""

    def __init__(self, tool: DataTool, folder: Path) -> None:
        self.tool, self.root, self.remote = tool, folder / "repo", folder / "remote"

    def argv(self, *args: str) -> list[str]:
        return [str(self.tool.exe), *args]

    def run(self, *args: str) -> None:
        run_process(self.argv(*args), self.root, tool_env())

    def create(self, data: dict[str, Path], *, remote: bool = False) -> None:
        empty_dir(self.root)
        subprocess.run(["git", "init", "-q"], cwd=self.root, check=True)
        for command in self.tool.init:
            self.run(*command)
        if remote:
            self.run(*self.tool.remote_add, str(self.remote))
        for name, source in data.items():
            datagen.link_copy(source, self.root / name)

    def fresh(self, data: dict[str, Path]) -> Callable[[int], None]:
        """A ``before`` hook: every run gets a new repository holding ``data``."""
        return lambda _run: self.create(data)

    def drop(self, paths: Sequence[str]) -> None:
        for rel in paths:
            discard(self.root / rel)

    def step(self, args: Sequence[str], before: Callable[[int], None] | None = None,
             payload: int = 0) -> Step:
        return Step(lambda _run: self.argv(*args), self.root, tool_env(), before, payload)


def _missing(tool: DataTool) -> str | None:
    """Why ``tool`` cannot run the data scenarios (``modelyard data`` may not be built yet)."""
    probe = subprocess.run([str(tool.exe), tool.add[0], "--help"], capture_output=True,
                           env=tool_env(), check=False)
    return None if probe.returncode == 0 else DATA_MISSING


def cases(ctx: Context) -> list[Case]:
    sizes, out = ctx.sizes, []
    ours = modelyard_tool()
    missing = _missing(ours)

    def big() -> Path:  # data is generated (or found) only when a session starts
        return datagen.big_file(ctx.data, sizes.big_file)

    def small() -> Path:
        return datagen.many_files(ctx.data, *sizes.small_files)

    def medium() -> Path:
        return datagen.many_files(ctx.data, *sizes.medium_files)

    def small_bytes() -> int:
        return datagen.tree_bytes(small())

    for tool in (ours, dvc_tool(ctx.anchors_venv)):
        def case(scenario: str, build: Callable[[Repo], Steps], tool: DataTool = tool) -> Case:
            @contextmanager
            def session() -> Iterator[Steps]:
                repo = Repo(tool, ctx.scratch(f"s{scenario}", tool.name))
                yield build(repo)
            return Case(scenario, tool.name, tool.name, session, algo=tool.algo,
                        unsupported=missing if tool is ours else None)

        def track_big(repo: Repo) -> Steps:
            source = big()
            return {f"add {_size(sizes.big_file)} file": repo.step(
                [*repo.tool.add, "big.bin"], repo.fresh({"big.bin": source}), sizes.big_file)}

        def track_many(repo: Repo) -> Steps:
            steps = {}
            for (count, typical), make in ((sizes.small_files, small), (sizes.medium_files,
                                                                         medium)):
                source = make()
                steps[f"add {count:,} x {_size(typical)} files"] = repo.step(
                    [*repo.tool.add, "files"], repo.fresh({"files": source}),
                    datagen.tree_bytes(source))
            return steps

        def rescan(repo: Repo) -> Steps:
            repo.create({"files": small()})
            repo.run(*repo.tool.add, "files")
            victim = repo.root / "files" / "class-0" / "000000.png"
            label = f"{sizes.small_files[0]:,} files"
            return {
                f"status, no change ({label})": repo.step(repo.tool.status, None, small_bytes()),
                f"re-add, no change ({label})": repo.step([*repo.tool.add, "files"], None,
                                                          small_bytes()),
                f"re-add, one file changed ({label})": repo.step(
                    [*repo.tool.add, "files"],
                    lambda r: datagen.replace_file(victim, f"changed {r}\n".encode()),
                    small_bytes()),
            }

        def transfer(repo: Repo) -> Steps:
            repo.create({"big.bin": big(), "files": small()}, remote=True)
            repo.run(*repo.tool.add, "big.bin", "files")
            total = sizes.big_file + small_bytes()
            label = f"{_size(sizes.big_file)} + {sizes.small_files[0]:,} files"

            def empty_remote(_run: int) -> None:
                discard(repo.remote)
                repo.drop(repo.tool.remote_state)

            def empty_local(_run: int) -> None:
                repo.drop([*repo.tool.local_state, "big.bin", "files"])
            return {f"push ({label})": repo.step(repo.tool.push, empty_remote, total),
                    f"pull ({label})": repo.step(repo.tool.pull, empty_local, total)}

        out += [case("1", track_big), case("2", track_many), case("3", rescan),
                case("4", transfer)]
    return out


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KB", 1000)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"
