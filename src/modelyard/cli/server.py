"""``modelyard server``: serve a registry over HTTP to a team (REST API, docs, health)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Annotated

import typer

from modelyard.cli.context import settings
from modelyard.cli.output import console, err_console
from modelyard.errors import InvalidInput

HostOpt = Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: all).")]
PortOpt = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")]
WorkersOpt = Annotated[int, typer.Option(
    "--workers", min=1, help="Server processes; they share nothing but the database and the "
    "store, so any number can serve one registry.")]
InitAdminOpt = Annotated[str | None, typer.Option(
    "--init-admin", metavar="NAME", help="Create the first admin (only on a registry with no "
    "users yet) and print their token once, then serve.")]


RegistryOpt = Annotated[str | None, typer.Option(
    "--registry", metavar="URI", help="Metadata database (postgresql://… for a team); "
    "default: the global --registry or MODELYARD_REGISTRY_URI.")]
StoreOpt = Annotated[str | None, typer.Option(
    "--store", metavar="URI", help="Object store (s3://bucket/prefix for a team); default: "
    "the global --store or MODELYARD_STORE_URI.")]


def server(ctx: typer.Context, host: HostOpt = "127.0.0.1", port: PortOpt = 8080,
           workers: WorkersOpt = 1, registry: RegistryOpt = None, store: StoreOpt = None,
           init_admin: InitAdminOpt = None) -> None:
    """Serve the registry (--registry, --store or MODELYARD_* settings) over HTTP.

    REST under /api/v1 (every operation of the Python API), OpenAPI at /openapi.json,
    interactive docs at /docs, health at /healthz. Callers authenticate with a bearer
    token; make the first admin with --init-admin NAME.
    """
    import uvicorn

    base = settings(ctx)
    chosen = replace(base, registry_uri=registry or base.registry_uri,
                     store_uri=store or base.store_uri)
    if chosen.registry_uri.startswith(("http://", "https://")):
        raise InvalidInput(f"{chosen.registry_uri} is a server: a server serves a database",
                           hint="pass --registry postgresql://… (or sqlite:///…), or unset "
                                "MODELYARD_REGISTRY_URI")
    from modelyard.services.webhook_delivery import WebhookSettings

    WebhookSettings.from_environment()  # a bad MODELYARD_WEBHOOK_* is refused here, once
    if init_admin is not None:
        from modelyard.services.access import init_admin as make_admin
        from modelyard.storage.sql.database import Database

        db = Database(chosen.registry_uri)
        try:
            user, token = make_admin(db, init_admin)
        finally:
            db.dispose()
        console.print(f"admin {user.name} created; token: {token}", highlight=False,
                      markup=False, soft_wrap=True)
        err_console.print("store this token now: it is not shown again", style="yellow")
    # every worker process builds its app from these (uvicorn imports the factory afresh)
    os.environ["MODELYARD_REGISTRY_URI"] = chosen.registry_uri
    os.environ["MODELYARD_STORE_URI"] = chosen.store_uri
    err_console.print(f"serving {chosen.registry_uri} at http://{host}:{port} "
                      f"({workers} worker{'s' if workers > 1 else ''}); docs at /docs",
                      highlight=False)
    uvicorn.run("modelyard.server.app:app_from_environment", factory=True, host=host,
                port=port, workers=workers, log_level="warning", access_log=False)
