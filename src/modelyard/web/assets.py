"""The UI's static files, served from the package itself (no CDN: users' networks may
have no internet). Only the files shipped in ``static/`` exist; a name is a dictionary key,
never a path, so no request can reach another file."""

from __future__ import annotations

from importlib import resources

from fastapi import Request, Response

from modelyard.errors import NotFound
from modelyard.storage.content.hashing import hash_bytes
from modelyard.web.views import page_router

routes = page_router()
_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
          ".js": "text/javascript; charset=utf-8"}


def _load() -> dict[str, tuple[bytes, str, str]]:
    """name -> (bytes, content type, etag)."""
    found = {}
    for item in resources.files("modelyard.web").joinpath("static").iterdir():
        kind = _TYPES.get("." + item.name.rpartition(".")[2])
        if item.is_file() and kind is not None:
            data = item.read_bytes()
            found[item.name] = (data, kind, f'"{hash_bytes(data)[7:23]}"')
    return found


_FILES = _load()


@routes.get("/static/{name}")
def static(request: Request, name: str) -> Response:
    if name not in _FILES:
        raise NotFound(f"no static file {name!r}")
    data, kind, etag = _FILES[name]
    headers = {"etag": etag, "cache-control": "public, max-age=3600",
               "x-content-type-options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=kind, headers=headers)
