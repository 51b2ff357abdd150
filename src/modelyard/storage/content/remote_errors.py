"""How a remote object store fails: quickly, and as one ``StorageUnavailable`` naming it.

Left to their defaults, botocore (5 attempts with back-off) and s3fs (5 more around each
call) take about 9 seconds to report a refused connection, and a missing bucket reaches
the user as a ``FileNotFoundError`` traceback. Here S3 gets a short connect timeout and
two attempts at each level (a transient error is still retried once), and driver errors
become a single message with the bucket, the endpoint and what to check.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import fsspec

from modelyard.errors import StorageUnavailable

_NETWORK_ERROR_MODULES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "adlfs")
_S3_PROTOCOLS = frozenset({"s3", "s3a"})
S3_CONNECT_TIMEOUT = 2  # seconds: a reachable endpoint answers a TCP connect far sooner
S3_ATTEMPTS = 2  # per request in botocore, and per call in s3fs


def fail_fast_options(url: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` plus bounded retries and a short connect timeout for ``s3://`` URLs.

    Whatever the caller set explicitly wins (e.g. a remote's ``config_kwargs``);
    ``retries`` is s3fs's own per-call retry count, applied by ``tune``.
    """
    merged = dict(options or {})
    if url.split("://", 1)[0] not in _S3_PROTOCOLS:
        return merged
    config = dict(merged.get("config_kwargs") or {})
    config.setdefault("connect_timeout", S3_CONNECT_TIMEOUT)
    config.setdefault("retries", {"max_attempts": S3_ATTEMPTS, "mode": "standard"})
    merged["config_kwargs"] = config
    return merged


def tune(fs: fsspec.AbstractFileSystem, options: dict[str, Any]) -> None:
    """Apply s3fs's per-call retry count (a class attribute, not a constructor argument)."""
    retries = options.pop("retries", S3_ATTEMPTS)
    if _S3_PROTOCOLS & set(_protocols(fs)):
        fs.retries = int(retries)


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return type(exc).__module__.split(".")[0] in _NETWORK_ERROR_MODULES


def translate(
    exc: Exception, url: str, fs: fsspec.AbstractFileSystem, root: str, *, writing: bool
) -> StorageUnavailable | None:
    """The ``StorageUnavailable`` that ``exc`` means, or None to let it pass.

    A ``FileNotFoundError`` while *writing* can only mean the bucket (or the whole
    endpoint) is not there: objects are written under their own new keys.
    """
    endpoint = _endpoint(fs)
    where = f"object store {url}" + (f" at {endpoint}" if endpoint else "")
    if isinstance(exc, FileNotFoundError) and writing and _S3_PROTOCOLS & set(_protocols(fs)):
        bucket = root.split("/", 1)[0]
        return StorageUnavailable(
            f"bucket {bucket!r} of {where} does not exist (the endpoint answered: {exc})",
            hint="check the bucket name and the endpoint URL, create the bucket if it is new,"
                 " and check the credentials",
            url=url, bucket=bucket,
        )
    if isinstance(exc, PermissionError):
        return StorageUnavailable(
            f"{where} refused access: {exc}",
            hint="check the credentials and the bucket's permissions", url=url)
    if is_network_error(exc):
        return StorageUnavailable(
            f"{where} is unavailable: {type(exc).__name__}: {exc}",
            hint="check the endpoint URL, the network, the bucket name and the credentials",
            url=url,
        )
    return None


def _endpoint(fs: fsspec.AbstractFileSystem) -> str | None:
    endpoint = getattr(fs, "endpoint_url", None) or (
        getattr(fs, "client_kwargs", None) or {}).get("endpoint_url")
    if endpoint is None and _S3_PROTOCOLS & set(_protocols(fs)):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return str(endpoint) if endpoint else None
