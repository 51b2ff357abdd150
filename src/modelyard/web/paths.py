"""The addresses of the UI's pages, spelled once (handlers, templates and the SVG use them)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


def _seg(value: Any) -> str:
    return quote(str(value), safe="")


def model(name: str) -> str:
    return f"/models/{_seg(name)}"


def version(name: str, number: int | str) -> str:
    return f"{model(name)}/versions/{_seg(number)}"


def run(run_id: str) -> str:
    return f"/runs/{_seg(run_id)}"


def experiment(name: str) -> str:
    return f"/runs?experiment={quote(name, safe='')}"


def dataset(name: str) -> str:
    return f"/datasets/{_seg(name)}"


def request(request_id: int) -> str:
    return f"/requests/{int(request_id)}"


def download(digest: str, filename: str) -> str:
    return f"/download/{quote(digest, safe=':')}?name={quote(filename, safe='')}"
