"""What a run records about where it ran: git state, Python, platform, packages, user.

Captured in the training process itself (only it knows its working tree and imports),
never raising: a machine without git, or a folder outside a repository, records ``None``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from modelyard.config import _os_user


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """Repository root, commit, branch, origin and dirty flag; None outside a repository.

    Dirty means tracked files differ from the commit: untracked files (outputs, caches)
    do not count, since they rarely change what the code does.
    """
    where = Path(cwd or os.getcwd())
    root = _git(where, "rev-parse", "--show-toplevel")
    if root is None:
        return None
    commit = _git(where, "rev-parse", "--verify", "-q", "HEAD")
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    return {
        "repo": root,
        "commit": commit or None,
        "branch": _git(where, "rev-parse", "--abbrev-ref", "HEAD") if commit else None,
        "remote": _git(where, "config", "--get", "remote.origin.url") or None,
        "dirty": bool(status) if status is not None else None,
    }


def installed_packages() -> dict[str, str]:
    """Every distribution importable here, lower-cased name → version."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name.lower(), dist.version)
    return dict(sorted(found.items()))


def python_environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "user": _os_user(),
        "packages": installed_packages(),
    }
