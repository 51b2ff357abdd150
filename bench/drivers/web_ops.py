"""Modelyard's side of the web UI scenario: its pages, from the app in-process or from
``modelyard server``.

Runs in Modelyard's own environment. The bulk load writes straight to the registry (as
scenarios 7 and 8 do). The measured calls sign in once with a token, as a browser does,
then fetch each page: with ``url``, over loopback HTTP from the server (its render plus a
round trip); without, from the same app built in this process on the embedded registry
at ``home`` (FastAPI's TestClient: the render and the ASGI stack, no socket).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from fastapi.testclient import TestClient

from bench.drivers import modelyard_ops
from bench.drivers.common import Args, Report, serve
from modelyard.config import Settings
from modelyard.server.app import create_app
from modelyard.services.access import init_admin
from modelyard.storage.sql import repository as repo

PAGE_WARMUP = 5  # calls per page before timing: both server workers have served it
TICK = os.sysconf("SC_CLK_TCK")  # /proc's CPU times are in these


def _group_cpu(group: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group
    ``group``: a server and its workers, whose work the client's wall time cannot tell
    apart from waiting on a busy machine."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:  # field 5: pgrp; 14 and 15: utime, stime
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def _cpu(args: Args) -> float:
    """CPU seconds of whoever renders the pages: the server's processes, or this one (the
    app in-process, with its test client)."""
    return _group_cpu(int(args["server_pid"])) if "url" in args else time.process_time()


def populate(args: Args, report: Report) -> None:
    """The 10,000-version model of scenarios 7 and 8, and ``models`` more models; an
    embedded registry also gets its first admin, whose token is reported."""
    modelyard_ops.populate(args, report)
    now = datetime.now(UTC)
    with modelyard_ops._embedded(args) as reg:
        with reg.db.transaction() as conn:
            for i in range(int(args["models"])):
                repo.insert_model_if_missing(conn, name=f"model-{i:05d}", description="",
                                             tags={"team": str(i % 7)}, actor="bench", at=now)
        if "url" not in args:
            report.extra["token"] = init_admin(reg.db, "bench")[1]


@contextmanager
def _client(args: Args) -> Iterator[httpx.Client]:
    """A client of the server at ``url``, or of the app in-process on ``home``."""
    if "url" in args:
        with httpx.Client(base_url=args["url"], timeout=60) as client:
            yield client
        return
    settings = Settings.resolve(home=args["home"])
    with TestClient(create_app(settings.registry_uri, settings.store_uri)) as client:
        yield client


def _sign_in(client: httpx.Client, token: str) -> None:
    nonce = re.search(r'name="signin" value="([^"]+)"', client.get("/login").text)
    assert nonce is not None, "no sign-in form"
    answer = client.post("/login", data={"token": token, "signin": nonce.group(1),
                                         "next": "/models"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:200]


def pages(args: Args, report: Report) -> None:
    model = modelyard_ops.MODEL
    with _client(args) as client:
        _sign_in(client, args["token"])
        for label, address, expect in (
                ("models page", "/models", f'href="/models/{model}"'),
                ("model page", f"/models/{model}", "Versions"),
                ("model chart", f"/models/{model}/chart.svg?metric=auc", 'class="marked"')):
            def fetch(address: str = address, expect: str = expect) -> None:
                answer = client.get(address)
                assert answer.status_code == 200 and expect in answer.text, address
            for _ in range(PAGE_WARMUP):
                fetch()
            used = _cpu(args)
            report.latencies(label, fetch, int(args["calls"]))
            made = int(report.extra.get(f"{label} calls") or args["calls"]) + 1  # + untimed
            report.extra[f"{label} cpu ms"] = round((_cpu(args) - used) / made * 1000, 1)
            report.extra[f"{label} bytes"] = len(client.get(address).content)


if __name__ == "__main__":
    serve({"populate": populate, "pages": pages})
