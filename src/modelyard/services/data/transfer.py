"""``data push``, ``fetch`` and ``pull``: move objects between the cache and a remote.

The remote is asked which objects it already has in batches (``exists_many``: one
request per object, or one listing per 2-hex prefix when many share it; never a whole
bucket), then the missing ones move in parallel. A folder's files go before its
manifest, so a store that has a manifest has all of its files. ``fetch`` also replaces
cache objects that no longer match their digest (``cache_integrity``) with verified
copies, each renamed over the damaged one in one step.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from modelyard.domain.codec import Record
from modelyard.errors import IntegrityError, NotFound
from modelyard.services.data import cache_integrity
from modelyard.services.data.checkout import CheckoutReport, checkout
from modelyard.services.data.progress import NULL_METER, Meter
from modelyard.services.data.remotes import get_remote, open_remote
from modelyard.services.data.workspace import Tracked, Workspace
from modelyard.storage.content.chunk_reuse import LocalLists, fetch_file
from modelyard.storage.content.chunked import SentBytes, list_at
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.parallel import default_jobs, run_parallel

_LIST_LOCAL_OVER = 2_000


@dataclass
class Objects:
    """The objects some pointers need: files (digest → size), then folder manifests."""

    files: dict[str, int] = field(default_factory=dict)
    manifests: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return [*self.files, *self.manifests]


@dataclass(frozen=True)
class TransferReport(Record):
    remote: str
    transferred: int
    bytes: int
    already_present: int
    bytes_sent: int = 0
    """What actually moved: a chunked file sends (push) or downloads (fetch) only the
    chunks the other side lacked."""


def object_digests(cache: ObjectStore, tracked: Iterable[Tracked],
                   source: ObjectStore | None = None) -> Objects:
    """Every object ``tracked`` needs. Folder manifests are read from the cache, or from
    ``source`` (a remote) when the cache lacks them or its copy is damaged; the cache
    only gets a manifest after all of its files."""
    found = Objects()
    for item in tracked:
        p = item.pointer
        if p.kind == "file":
            found.files[p.digest] = p.size
            continue
        if source is not None:
            try:
                manifest = cache.get_manifest(p.digest)
            except (NotFound, IntegrityError):
                manifest = source.get_manifest(p.digest)  # NotFound names the remote
        else:
            try:
                manifest = cache.get_manifest(p.digest)
            except NotFound:
                raise NotFound(f"the content of {item.data_path} is not in the cache",
                               hint="run 'modelyard data fetch' (or 'data add' if you made "
                                    "it here)", path=item.data_path) from None
        for entry in manifest.entries:
            found.files[entry.digest] = entry.size
        found.manifests.append(p.digest)
    return found


def present(store: ObjectStore, digests: Sequence[str], jobs: int | None = None) -> set[str]:
    """The digests ``store`` holds. For many objects in a local store, one listing of its
    256 prefix folders beats a ``stat`` per object."""
    if store.is_local and len(digests) > _LIST_LOCAL_OVER:
        return set(digests) & set(store.iter_digests())
    return store.exists_many(digests, workers=jobs)


def copy_objects(src: ObjectStore, dst: ObjectStore, objects: Objects, *,
                 jobs: int | None = None, meter: Meter = NULL_METER,
                 description: str = "copying",
                 replace: frozenset[str] = frozenset(),
                 received: SentBytes | None = None) -> tuple[list[str], set[str]]:
    """Copy what ``dst`` lacks, and ``replace`` (damaged copies in ``dst``, which must
    then be local); returns (copied digests, digests already in ``dst``).

    One side must be local. Every copy is verified while it streams (a corrupted source
    object raises IntegrityError) and appears at the destination only when complete. A
    chunked file fetched into the whole-file cache downloads only the chunks no cached
    file has (``chunk_reuse``); ``received`` counts the bytes downloaded.
    """
    received = received if received is not None else SentBytes()
    jobs = jobs or default_jobs()
    in_dst = present(dst, objects.all(), jobs) - replace
    files = [d for d in objects.files if d not in in_dst]
    manifests = [d for d in objects.manifests if d not in in_dst]
    if src.is_local:
        absent = set(files + manifests) - present(src, files + manifests)
        if absent:
            raise NotFound(f"{len(absent)} object(s) to copy are missing from {src.url}, "
                           f"e.g. {min(absent)}",
                           hint="run 'modelyard data status' to see which data they belong to",
                           digest=min(absent))
    meter.start(description, len(files) + len(manifests), sum(objects.files[d] for d in files))

    fetching = _chunk_lists(dst, src)  # into a whole-file cache, from a chunked remote
    pushing = _chunk_lists(src, dst)

    def copy(digest: str) -> None:  # from a remote, or replacing a damaged copy
        if fetching is not None and _maybe_chunked(src, objects.files.get(digest)):
            fetch_file(src, fetching, digest, meter.advance, received)
        else:  # a verified download renamed over the target: also replaces a damaged copy
            target = dst.local_path(digest)
            src.get_file(digest, target, progress=meter.advance)
            received.add(objects.files.get(digest, 0))
            os.chmod(target, 0o444)  # cache objects are immutable
        meter.file_done()

    def put(digests: list[str]) -> None:
        """From a local store, in the destination's batches (``put_files``): copied and
        verified as they land."""
        dst.put_files({d: (src.local_path(d), objects.files.get(d) or src.stored_size(d))
                       for d in digests}, meter.advance, jobs, on_object=meter.file_done)
        if pushing is not None:
            for digest in digests:
                if _maybe_chunked(dst, objects.files.get(digest)):
                    _remember_list(pushing, dst, digest)

    def copied_one_by_one(digest: str) -> bool:
        return not src.is_local or digest in replace or (
            fetching is not None and _maybe_chunked(src, objects.files.get(digest)))

    for batch in (files, manifests):  # a folder's files go before its manifest
        one_by_one = {d for d in batch if copied_one_by_one(d)}
        put([d for d in batch if d not in one_by_one])
        run_parallel(copy, [d for d in batch if d in one_by_one], jobs)
    return files + manifests, in_dst


def _chunk_lists(cache: ObjectStore, remote: ObjectStore) -> LocalLists | None:
    """The cache's chunk lists when objects move between a local whole-file ``cache`` and a
    chunked ``remote``, else None."""
    if cache.is_local and cache.chunking is None and remote.chunking is not None:
        return LocalLists(cache)
    return None


def _maybe_chunked(store: ObjectStore, size: int | None) -> bool:
    return size is not None and store.chunking is not None and store.chunking.applies(size)


def _remember_list(lists: LocalLists, remote: ObjectStore, digest: str) -> None:
    """Keep the list of a file just pushed, so fetching its next version can reuse it."""
    listed = list_at(remote, digest)
    if listed is not None:
        lists.record(listed)


def push(ws: Workspace, paths: Sequence[str | os.PathLike[str]] = (), *,
         remote: str | None = None, jobs: int | None = None,
         meter: Meter = NULL_METER) -> TransferReport:
    """Upload the cached objects of the selected pointers (all by default) to a remote."""
    chosen = get_remote(ws, remote)
    store = open_remote(ws, chosen)
    objects = object_digests(ws.cache, ws.tracked(paths))
    chunk_bytes = store.chunk_bytes_sent.total
    copied, already = copy_objects(ws.cache, store, objects, jobs=jobs, meter=meter,
                                   description=f"pushing to {chosen.name}")
    ws.remote_index.add(store.url, [*copied, *already])
    policy = store.chunking
    whole = sum(objects.files.get(d, 0) for d in copied
                if policy is None or not policy.applies(objects.files.get(d, 0)))
    return _report(chosen.name, objects, copied, already,
                   sent=whole + store.chunk_bytes_sent.total - chunk_bytes)


def fetch(ws: Workspace, paths: Sequence[str | os.PathLike[str]] = (), *,
          remote: str | None = None, jobs: int | None = None,
          meter: Meter = NULL_METER) -> TransferReport:
    """Download into the cache what the selected pointers need and the cache lacks."""
    chosen = get_remote(ws, remote)
    store = open_remote(ws, chosen)
    tracked = ws.tracked(paths)
    objects = object_digests(ws.cache, tracked, source=store)
    received = SentBytes()
    copied, already = copy_objects(store, ws.cache, objects, jobs=jobs, meter=meter,
                                   description=f"fetching from {chosen.name}",
                                   replace=frozenset(cache_integrity.check(ws, tracked).objects),
                                   received=received)
    # Each copy was verified as it landed: record that in the hash cache, so the checkout
    # that follows (pull) does not hash every fetched object a second time.
    landed = [ws.cache.local_path(d) for d in copied]
    ws.state.put_many((path, os.stat(path), d) for path, d in zip(landed, copied, strict=True))
    ws.remote_index.add(store.url, copied)
    return _report(chosen.name, objects, copied, already, sent=received.total)


def pull(ws: Workspace, paths: Sequence[str | os.PathLike[str]] = (), *,
         remote: str | None = None, jobs: int | None = None, force: bool = False,
         meter: Meter = NULL_METER) -> tuple[TransferReport, CheckoutReport]:
    """``fetch`` then ``checkout``."""
    fetched = fetch(ws, paths, remote=remote, jobs=jobs, meter=meter)
    return fetched, checkout(ws, paths, force=force, jobs=jobs, meter=meter)


def _report(name: str, objects: Objects, copied: list[str], present: set[str],
            sent: int | None = None) -> TransferReport:
    size = sum(objects.files.get(d, 0) for d in copied)
    return TransferReport(name, len(copied), size, len(present),
                          size if sent is None else sent)
