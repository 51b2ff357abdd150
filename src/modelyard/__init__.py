"""Modelyard: a model registry with built-in data versioning.

``reg = modelyard.connect()`` opens the embedded registry (SQLite + a local object store
under ``MODELYARD_HOME``); ``connect("postgresql://…", store="s3://…")`` opens a shared one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from modelyard.config import Settings
from modelyard.errors import (
    AlreadyExists,
    ApprovalRequired,
    IntegrityError,
    InvalidInput,
    InvalidTransition,
    ModelyardError,
    NotFound,
    PermissionDenied,
    StorageUnavailable,
)

if TYPE_CHECKING:
    from modelyard.services.registry import Registry, RegistryApi
    from modelyard.tracking import Run, start_run

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "ApprovalRequired",
    "IntegrityError",
    "InvalidInput",
    "InvalidTransition",
    "ModelyardError",
    "NotFound",
    "PermissionDenied",
    "Registry",
    "Run",
    "Settings",
    "StorageUnavailable",
    "connect",
    "start_run",
]


def connect(
    registry: str | None = None,
    *,
    store: str | None = None,
    user: str | None = None,
    home: str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    token: str | None = None,
) -> RegistryApi:
    """Open a registry. Arguments override ``MODELYARD_*`` variables, which override defaults.

    ``http(s)://`` opens a Modelyard server as the principal of ``token`` (or
    ``MODELYARD_TOKEN``), with the same methods, results and errors as the embedded one.
    """
    settings = Settings.resolve(registry, store, user, home)
    if settings.registry_uri.startswith(("http://", "https://")):
        from modelyard.client.remote import RemoteRegistry

        return RemoteRegistry(settings.registry_uri, token=token)
    return open_embedded(settings, storage_options)


def open_embedded(settings: Settings, storage_options: dict[str, Any] | None = None
                  ) -> Registry:
    """The registry in this process: its database and object store opened directly."""
    from modelyard.services.registry import Registry
    from modelyard.storage.content.objects import ObjectStore
    from modelyard.storage.sql.database import Database

    if settings.registry_uri.startswith(("http://", "https://")):
        raise InvalidInput(f"{settings.registry_uri} is a server; this needs the registry's "
                           "database", hint="run it where the server runs, with its "
                                            "postgresql:// URL")
    database = Database(settings.registry_uri)
    return Registry(database, ObjectStore(settings.store_uri, storage_options, registry=True),
                    user=settings.user)


def __getattr__(name: str) -> Any:
    """Import the registry stack (SQLAlchemy, …) on first use, so the CLI starts fast."""
    if name == "Registry":
        from modelyard.services.registry import Registry

        return Registry
    if name in ("Run", "start_run"):
        from modelyard import tracking

        return getattr(tracking, name)
    raise AttributeError(f"module 'modelyard' has no attribute {name!r}")
