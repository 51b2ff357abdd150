"""Where the registry lives: options first, then ``MODELYARD_*`` variables, then defaults."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    registry_uri: str
    store_uri: str
    user: str

    @classmethod
    def resolve(
        cls,
        registry: str | None = None,
        store: str | None = None,
        user: str | None = None,
        home: str | os.PathLike[str] | None = None,
    ) -> Settings:
        env = os.environ
        base = Path(home or env.get("MODELYARD_HOME") or Path.home() / ".modelyard").expanduser()
        registry_uri = registry or env.get("MODELYARD_REGISTRY_URI") or (
            f"sqlite:///{(base / 'registry.db').absolute()}"
        )
        store_uri = store or env.get("MODELYARD_STORE_URI") or str((base / "objects").absolute())
        return cls(base, registry_uri, store_uri, user or env.get("MODELYARD_USER") or _os_user())


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
