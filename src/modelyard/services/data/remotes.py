"""``data remote add/list/remove``: named object stores in ``.modelyard/config``.

A remote is any store URL (folder, ``file://``, ``s3://bucket/prefix``, any fsspec URL)
plus fsspec options such as ``endpoint_url``; credentials come the usual way (AWS
environment variables or profile), never from the committed config.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from modelyard.errors import AlreadyExists, InvalidInput, NotFound
from modelyard.services.data.workspace import Remote, Workspace
from modelyard.storage.content.objects import ObjectStore

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)  # with fullmatch


def add_remote(ws: Workspace, name: str, url: str, *, default: bool = False,
               options: Mapping[str, Any] | None = None) -> Remote:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(f"invalid remote name {name!r}: use letters, digits, '.', '_', '-'")
    if not url.strip():
        raise InvalidInput("a remote needs a URL: a folder, file://…, s3://bucket/prefix")
    if name in ws.config.remotes:
        raise AlreadyExists(f"remote {name!r} already exists",
                            hint=f"'modelyard data remote remove {name}' first", name=name)
    remote = Remote(name, url, dict(options or {}))
    ws.config.remotes[name] = remote
    if default or ws.config.default_remote is None:
        ws.config.default_remote = name
    ws.save_config()
    return remote


def list_remotes(ws: Workspace) -> list[dict[str, Any]]:
    return [{**r.to_dict(), "default": r.name == ws.config.default_remote}
            for r in ws.config.remotes.values()]


def remove_remote(ws: Workspace, name: str) -> None:
    if name not in ws.config.remotes:
        raise NotFound(f"remote {name!r} not found", hint="see 'modelyard data remote list'")
    del ws.config.remotes[name]
    if ws.config.default_remote == name:
        ws.config.default_remote = next(iter(ws.config.remotes), None)
    ws.save_config()


def get_remote(ws: Workspace, name: str | None = None) -> Remote:
    """The named remote, or the default one."""
    chosen = name or ws.config.default_remote
    if chosen is None:
        raise NotFound("no remote configured",
                       hint="run 'modelyard data remote add NAME URL --default'")
    if chosen not in ws.config.remotes:
        raise NotFound(f"remote {chosen!r} not found", hint="see 'modelyard data remote list'")
    return ws.config.remotes[chosen]


def open_remote(ws: Workspace, remote: Remote) -> ObjectStore:
    """The remote's object store; a relative folder URL is relative to the workspace root."""
    url = remote.url
    if "://" not in url and not os.path.isabs(os.path.expanduser(url)):
        url = os.path.join(ws.root, url)
    return ObjectStore(url, remote.options)
