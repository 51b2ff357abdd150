"""Which optional extra provides the fsspec driver for a store URL, for install hints."""

from __future__ import annotations

_EXTRA_BY_PROTOCOL: dict[str, tuple[str, str]] = {  # protocol -> (extra, fsspec package)
    "s3": ("s3", "s3fs"), "s3a": ("s3", "s3fs"),
    "gs": ("gcs", "gcsfs"), "gcs": ("gcs", "gcsfs"),
    "az": ("azure", "adlfs"), "abfs": ("azure", "adlfs"), "abfss": ("azure", "adlfs"),
    "adl": ("azure", "adlfs"),
}


def protocol_of(url: str) -> str:
    """``s3`` for ``s3://bucket/x``; ``file`` for a plain path."""
    head, sep, _rest = url.partition("://")
    return head.lower().split("::")[-1] if sep else "file"


def missing_driver_hint(url: str) -> str:
    """What to install so ``url`` can be opened, naming the right extra."""
    protocol = protocol_of(url)
    if protocol in _EXTRA_BY_PROTOCOL:
        extra, package = _EXTRA_BY_PROTOCOL[protocol]
        return (f"for {protocol}:// install the '{extra}' extra:"
                f" pip install 'modelyard[{extra}]' (it provides {package})")
    return (f"install the fsspec driver for {protocol}:// (see"
            " https://filesystem-spec.readthedocs.io/en/latest/api.html#other-known-implementations)")
