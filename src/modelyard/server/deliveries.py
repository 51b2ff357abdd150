"""The webhook worker inside a server process: a thread beside the event loop.

Every server process runs one when webhooks are configured (``MODELYARD_WEBHOOK_KEY`` set)
unless ``MODELYARD_WEBHOOK_WORKER=0`` (teams that run ``modelyard events worker`` on its
own); the claim's row locks let any number of them share the work.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from modelyard.storage.sql.database import Database

log = logging.getLogger("modelyard.server.webhooks")


@contextmanager
def delivering(db: Database) -> Iterator[None]:
    """Deliver webhooks from ``db`` in a thread while the body runs."""
    from modelyard.services.webhook_delivery import WebhookSettings, Worker

    settings = WebhookSettings.from_environment()
    if not settings.keys or os.environ.get("MODELYARD_WEBHOOK_WORKER", "1") == "0":
        yield
        return
    worker, stop = Worker(db, settings), threading.Event()
    thread = threading.Thread(
        target=worker.run, name="modelyard-webhooks", daemon=True,
        kwargs={"stop": stop, "on_error": lambda e: log.warning("webhook worker: %s", e)})
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=settings.timeout + 5)
        worker.close()
