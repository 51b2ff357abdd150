"""``data remote add/modify/list/remove``: named object stores in ``.modelyard/config``.

A remote is any store URL (folder, ``file://``, ``s3://bucket/prefix``, any fsspec URL)
plus fsspec options such as ``endpoint_url``. Settings for one machine (credentials, a
local endpoint) go to ``.modelyard/config.local`` with ``local=True``: git-ignored and
merged over the committed config. A secret option is refused in the committed file, and
listings mask secret values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from modelyard.domain.suggest import with_suggestion
from modelyard.errors import AlreadyExists, InvalidInput, NotFound
from modelyard.services.data.workspace import DIR, LOCAL_CONFIG, Config, Remote, Workspace
from modelyard.storage.content.objects import ObjectStore

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)  # with fullmatch
_SECRET_NAMES = {"key", "access_key", "account_key", "aws_access_key_id", "sas"}
_SECRET_WORDS = ("secret", "password", "token", "credential", "connection_string", "sas_")
MASK = "***"


def is_secret(option: str) -> bool:
    """Whether an fsspec option holds a credential (s3fs ``key``/``secret``, adlfs keys…)."""
    lowered = option.lower()
    return lowered in _SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


def _layer(ws: Workspace, local: bool) -> Config:
    return ws.local if local else ws.config


def _save(ws: Workspace, local: bool) -> None:
    ws.save_local() if local else ws.save_config()


def _no_secrets_committed(options: Mapping[str, Any], local: bool) -> None:
    secrets = sorted(k for k in options if is_secret(k))
    if secrets and not local:
        raise InvalidInput(
            f"{', '.join(secrets)} would be committed to git in {DIR}/config",
            hint=f"add --local to keep it in {DIR}/{LOCAL_CONFIG} (git-ignored), or use the "
                 "cloud's environment variables")


def add_remote(ws: Workspace, name: str, url: str, *, default: bool = False,
               options: Mapping[str, Any] | None = None, local: bool = False) -> Remote:
    """Add a remote to the committed config, or (``local``) to this machine's config.local."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(f"invalid remote name {name!r}: use letters, digits, '.', '_', '-'")
    if not url.strip():
        raise InvalidInput("a remote needs a URL: a folder, file://…, s3://bucket/prefix")
    if name in ws.remotes():
        raise AlreadyExists(f"remote {name!r} already exists",
                            hint=f"'modelyard data remote modify {name} …' changes it", name=name)
    _no_secrets_committed(options or {}, local)
    layer = _layer(ws, local)
    remote = Remote(name, url, dict(options or {}))
    layer.remotes[name] = remote
    if default or ws.default_remote is None:
        layer.default_remote = name
    _save(ws, local)
    return remote


def modify_remote(ws: Workspace, name: str, option: str, value: Any = None, *,
                  local: bool = False, unset: bool = False) -> None:
    """Set (or ``unset``) the URL (``option="url"``) or an fsspec option of remote ``name``."""
    get_remote(ws, name)
    if not unset and value is None:
        raise InvalidInput(f"give a value for {option!r}, or --unset")
    if not unset:
        _no_secrets_committed({option: value}, local)
    layer = _layer(ws, local)
    entry = layer.remotes.get(name)
    if entry is None:
        if not local:
            raise NotFound(f"remote {name!r} is defined only in {DIR}/{LOCAL_CONFIG}",
                           hint="add --local to change it there")
        entry = layer.remotes[name] = Remote(name, "", {})
    if option == "url":
        if unset and not local:
            raise InvalidInput(f"remote {name!r} needs a url in {DIR}/config",
                               hint=f"'modelyard data remote remove {name}' removes the remote")
        entry.url = "" if unset else str(value)
    elif unset:
        if option not in entry.options:
            where = LOCAL_CONFIG if local else "config"
            raise NotFound(f"remote {name!r} has no option {option!r} in {DIR}/{where}",
                           hint="see 'modelyard data remote list'")
        del entry.options[option]
    else:
        entry.options[option] = value
    if local and not entry.url and not entry.options:
        del layer.remotes[name]  # nothing left to override
    ws.remotes()  # still consistent (a local-only remote keeps a url)
    _save(ws, local)


def list_remotes(ws: Workspace) -> list[dict[str, Any]]:
    """Remotes as merged, secrets masked; ``sources`` says which file set each setting."""
    return [{"name": r.name, "url": r.url,
             "options": {k: MASK if is_secret(k) else v for k, v in r.options.items()},
             "default": r.name == ws.default_remote, "sources": ws.setting_sources(r.name)}
            for r in ws.remotes().values()]


def remove_remote(ws: Workspace, name: str) -> None:
    """Remove the remote from config and config.local (its data is left alone)."""
    get_remote(ws, name)
    for local in (False, True):
        layer = _layer(ws, local)
        if name in layer.remotes or layer.default_remote == name:
            layer.remotes.pop(name, None)
            if layer.default_remote == name:
                layer.default_remote = next(iter(layer.remotes), None)
            _save(ws, local)


def get_remote(ws: Workspace, name: str | None = None) -> Remote:
    """The named remote, or the default one, with config.local merged in."""
    chosen = name or ws.default_remote
    if chosen is None:
        raise NotFound("no remote configured",
                       hint="run 'modelyard data remote add NAME URL --default'")
    remotes = ws.remotes()
    if chosen not in remotes:
        raise NotFound(f"remote {chosen!r} not found", hint=with_suggestion(
            chosen, remotes, "see 'modelyard data remote list'"))
    return remotes[chosen]


def open_remote(ws: Workspace, remote: Remote) -> ObjectStore:
    """The remote's object store; a relative folder URL is relative to the workspace root."""
    url = remote.url
    if "://" not in url and not os.path.isabs(os.path.expanduser(url)):
        url = os.path.join(ws.root, url)
    return ObjectStore(url, remote.options)
