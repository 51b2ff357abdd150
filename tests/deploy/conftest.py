"""A deployment: the real server (``uvicorn``, several workers) on a fresh PostgreSQL
database, over a store of the test's choosing (a folder, or S3 on the moto server); and
the app in-process on PostgreSQL, for single requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import pg
from server.conftest import LiveServer, Served, serve, start_server

__all__ = ["deploy", "on_pg", "pg_url", "serve", "start_server"]


@pytest.fixture
def pg_url(pg_databases: pg.PgDatabases) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database."""
    url = pg_databases.fresh()
    yield url
    pg_databases.release(url)


@pytest.fixture
def deploy(pg_url: str, start_server: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """``deploy(store_uri=None, workers=2)``: the server on ``pg_url``, admin ``ana``."""

    def start(store_uri: str | None = None, workers: int = 2) -> LiveServer:
        return start_server(registry_uri=pg_url, store_uri=store_uri, workers=workers)

    return start


@pytest.fixture
def on_pg(pg_url: str, serve: Callable[..., Served]) -> Served:
    """The app in-process on ``pg_url`` (a folder store), admin ``ana``."""
    return serve(registry_uri=pg_url)
