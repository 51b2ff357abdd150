"""What killed writers leave in an object store, and removing it once it is surely stale.

A register, push or fetch killed mid-write leaves its temporary file (``.modelyard-*.tmp``
next to the objects, on a local folder or a non-object-store remote) or, on S3, an
incomplete multipart upload that is invisible but still billed. Nothing ever finishes
them. Only leftovers older than a grace period are removed, so a writer that is still
running (its temporary file is young) is never disturbed.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime

from modelyard.domain.codec import Record
from modelyard.storage.content.objects import ObjectStore

DEFAULT_GRACE = 3600.0  # seconds: far longer than any single object write takes
_TEMP_RE = re.compile(r"\.modelyard-[0-9a-f]{16}\.tmp")


@dataclass(frozen=True, slots=True)
class Leftover(Record):
    path: str
    size: int
    age_seconds: float
    upload_id: str | None = None  # an incomplete S3 multipart upload


def find_leftovers(store: ObjectStore) -> list[Leftover]:
    """Every temporary file and incomplete upload under the store, oldest first."""
    now = time.time()
    if store.is_local:
        found = _local(store.root, now)
    else:
        with store.translated_errors():
            found = _uploads(store, now) if _is_s3(store) else _remote_temps(store, now)
    return sorted(found, key=lambda f: -f.age_seconds)


def remove_leftovers(store: ObjectStore, older_than: float = DEFAULT_GRACE,
                     dry_run: bool = False) -> list[Leftover]:
    """Remove (or with ``dry_run`` only list) leftovers older than ``older_than`` seconds."""
    stale = [f for f in find_leftovers(store) if f.age_seconds >= older_than]
    if dry_run:
        return stale
    removed = []
    for item in stale:
        try:
            if store.is_local:
                os.unlink(item.path)
            else:
                with store.translated_errors(writing=True):
                    if item.upload_id is not None:
                        bucket, _, key = item.path.partition("/")
                        store.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key,
                                         UploadId=item.upload_id)
                    else:
                        store.fs.rm_file(item.path)
        except FileNotFoundError:  # finished or removed meanwhile
            continue
        removed.append(item)
    return removed


def _local(root: str, now: float) -> list[Leftover]:
    found = []
    folders = [root]
    try:
        with os.scandir(root) as it:
            folders += [e.path for e in it if len(e.name) == 2 and e.is_dir()]
    except FileNotFoundError:
        return []
    for folder in folders:
        with os.scandir(folder) as it:
            for entry in it:
                if _TEMP_RE.fullmatch(entry.name):
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    found.append(Leftover(entry.path, st.st_size, max(0.0, now - st.st_mtime)))
    return found


def _is_s3(store: ObjectStore) -> bool:
    protocols = {store.fs.protocol} if isinstance(store.fs.protocol, str) else set(
        store.fs.protocol)
    return bool(protocols & {"s3", "s3a"})


def _uploads(store: ObjectStore, now: float) -> list[Leftover]:
    bucket, _, prefix = store.root.partition("/")
    try:
        uploads = store.fs.list_multipart_uploads(bucket)
    except FileNotFoundError:
        return []
    found = []
    for upload in uploads:
        key = str(upload.get("Key", ""))
        if prefix and not key.startswith(prefix.rstrip("/") + "/"):
            continue
        initiated = upload.get("Initiated")
        age = now - initiated.timestamp() if isinstance(initiated, datetime) else 0.0
        found.append(Leftover(f"{bucket}/{key}", 0, max(0.0, age), str(upload["UploadId"])))
    return found


def _remote_temps(store: ObjectStore, now: float) -> list[Leftover]:
    try:
        listed = store.fs.find(store.root, detail=True)
    except FileNotFoundError:
        return []
    found = []
    for path, info in listed.items():
        if _TEMP_RE.fullmatch(str(path).rsplit("/", 1)[-1]):
            mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
            stamp = mtime.timestamp() if isinstance(mtime, datetime) else float(mtime or now)
            found.append(Leftover(str(path), int(info.get("size") or 0), max(0.0, now - stamp)))
    return found
