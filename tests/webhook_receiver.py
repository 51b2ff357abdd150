"""A real HTTP receiver on loopback for webhook tests: it records every request and answers
with the statuses a test scripts (then 200), optionally holding a request until released or
trickling its answer a byte at a time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []  # answered in turn, then 200
        self.hold = threading.Event()  # while clear and holding, requests wait
        self.holding = False
        self.trickle: float | None = None  # seconds between the bytes of a long answer
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.arrived:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()),
                                                      body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.arrived.notify_all()
                if receiver.holding:
                    receiver.hold.wait(30)
                answer = json.dumps({"received": len(receiver.requests)}).encode()
                if receiver.trickle is not None:
                    answer = answer.ljust(1 << 16)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    if receiver.trickle is None:
                        self.wfile.write(answer)
                    for byte in answer if receiver.trickle is not None else b"":
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        receiver.hold.wait(receiver.trickle)
                except OSError:
                    pass  # the sender died meanwhile

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/modelyard"

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout), (
                f"{len(self.requests)} requests arrived, expected {count}")
            return list(self.requests)


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.hold.set()
        receiver.server.shutdown()
        receiver.server.server_close()
