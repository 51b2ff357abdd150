"""Content by digest: what a remote client uploads and downloads, verified both ways.

::

  GET  /api/v1/content/policy     the store's chunk policy and batch cap, so a client cuts
                                  large files exactly as the embedded store does
  POST /api/v1/content/missing    which of these digests the store lacks (one batch)
  POST /api/v1/content/batch      store many objects (chunks, small files) sent in one body
                                  as frames, ``blake3:<hex> <size>\\n`` then the bytes, each
                                  verified before it becomes visible
  PUT  /api/v1/content/{digest}   store a body that hashes to ``digest``; with ``?chunked=1``
                                  the body is a chunk list, accepted once its chunks are here
                                  and hash, together, to ``digest``
  GET  /api/v1/content/{digest}   the content (a chunked file as its whole bytes), verified
                                  while it streams, with single byte ranges; HEAD its size

There is no upload session to lose: a chunk that arrived is an object like any other, so
an upload cut by a dropped connection or a server restart resumes when the client asks
again which chunks are missing. A batch costs one request, one token check and one
fsync of the store's folders for all its objects, where a request per chunk paid each
of them about 830 times per GiB; its body is read one frame at a time, so the server
holds about one object of it in memory. Nothing is visible before it verified: a body streams into
the store's own atomic put (temp + rename, or an S3 upload committed at the end) only if
it hashes to its digest, and a chunk list, the last thing a large file sends, only once
every chunk is present and they assemble into the file. A digest in a path must be
``blake3:`` and 64 lowercase hex exactly as sent (no percent-encoding), so no client text
ever reaches a store path.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import AsyncIterator, Iterator
from functools import partial
from itertools import chain
from typing import Any

import anyio.from_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from modelyard.domain.principal import Permission, Principal
from modelyard.errors import IntegrityError, InvalidInput, PermissionDenied, Unauthenticated
from modelyard.server.auth import audit_refusal, principal_of
from modelyard.storage.content import chunk_lists
from modelyard.storage.content.chunk_lists import ChunkList
from modelyard.storage.content.chunked import (
    ChunkedReader,
    explain_mismatch,
    list_at,
    unchecked_reader,
)
from modelyard.storage.content.hashing import (
    Pieces,
    format_digest,
    hash_stream,
    new_hasher,
    parse_digest,
)
from modelyard.storage.content.objects import ObjectStore

PREFIX = "/api/v1/content"
MAX_BATCH = 10_000
"""Digests per ``missing`` call: about 750 KB of JSON."""
MAX_LIST = 16 * 1024 * 1024
"""Bytes of a chunk list PUT: ~200,000 chunks, a 200 GiB file at the default chunk size,
read into memory to be parsed; anything larger is refused before it is read."""
MAX_FRAME = 8 * 1024 * 1024
"""Bytes of one object in a batch (a chunk is at most 4 MiB): each is held in memory
while it is verified, so larger files go by PUT, streamed."""
_PIECE = 1024 * 1024  # bytes per read of a body or a stored object, per request
_FRAME_HEADER = len(f"blake3:{'0' * 64} {MAX_FRAME}\n")


class MissingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digests: list[str] = Field(max_length=MAX_BATCH)


class MissingAnswer(BaseModel):
    missing: list[str]


_BINARY_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
"""OpenAPI for a raw byte body (FastAPI cannot infer one it reads as a stream)."""


def add_routes(api: APIRouter) -> None:
    """Add the content routes to ``api`` (the app's own router: an included router would
    be matched route by route twice per request, before and after it is selected)."""
    _add = partial(api.add_api_route, tags=["content"])
    # The fixed paths go first: the digest routes below match any text under PREFIX (so
    # a malformed or traversing one is answered 400 by the digest check, not 404).
    _add(PREFIX + "/policy", policy, methods=["GET"], operation_id="content_policy",
         summary="The store's chunk policy and the missing-call batch cap",
         description="Needs the **read** permission.")
    _add(PREFIX + "/missing", missing, methods=["POST"],
         operation_id="missing_content",
         summary="Which of these digests the store lacks",
         description="Needs the **contribute** permission. At most "
                     f"{MAX_BATCH} digests per call.")
    _add(PREFIX + "/batch", put_batch, methods=["POST"],
         operation_id="put_content_batch",
         summary="Store many objects sent in one body",
         openapi_extra=_BINARY_BODY,
         description="Needs the **contribute** permission. The body is frames, "
                     "each a line `blake3:<64 hex> <size>` and then `size` "
                     f"bytes (at most {MAX_FRAME}); each object becomes visible "
                     "only once it hashed to its digest, and a frame that does "
                     "not ends the batch with 400, the objects before it kept.")
    _add(PREFIX + "/{digest:path}", put_content, methods=["PUT"],
         operation_id="put_content",
         summary="Store content that hashes to its digest",
         openapi_extra=_BINARY_BODY,
         description="Needs the **contribute** permission. The body streams "
                     "into the store and becomes visible only if it hashes to "
                     "the digest; with `chunked=1` it is a chunk list, accepted "
                     "once every chunk is stored and they hash to the digest.")
    for method, summary in (("GET", "Stream content by digest, verified (single byte ranges)"),
                            ("HEAD", "The size of content by digest")):
        _add(PREFIX + "/{digest:path}", get_content, methods=[method],
             operation_id=f"{method.lower()}_content", summary=summary,
             description="Needs the **read** permission. A stream whose bytes "
                         "do not verify is cut off before its end.",
             response_class=StreamingResponse)


# -- the routes ----------------------------------------------------------------------------

def policy(request: Request) -> dict[str, Any]:
    _authorize(request, Permission.READ, "read content")
    rules = _store(request).chunking
    return {"max_batch": MAX_BATCH, "max_frame": MAX_FRAME,
            "chunking": None if rules is None else {
                "threshold": rules.threshold, "avg_size": rules.avg_size,
                "min_size": rules.min_size, "max_size": rules.max_size}}


def missing(request: Request, body: MissingRequest) -> MissingAnswer:
    wanted = list(dict.fromkeys(_canonical(d) for d in body.digests))
    _authorize(request, Permission.CONTRIBUTE, "upload content")
    present = _store(request).exists_many(wanted)
    return MissingAnswer(missing=[d for d in wanted if d not in present])


async def put_content(request: Request, digest: str, chunked: bool = False) -> JSONResponse:
    address = _address(request, digest)
    await run_in_threadpool(_authorize, request, Permission.CONTRIBUTE, "upload content",
                            "put_content")
    store = _store(request)
    length = _content_length(request)
    if chunked and length is not None and length > MAX_LIST:
        raise InvalidInput(f"a chunk list is at most {MAX_LIST} bytes", digest=address)
    try:
        if await run_in_threadpool(store.exists, address):  # idempotent: nothing to do
            async for _ in request.stream():
                pass
            return JSONResponse({"digest": address, "stored": False})
        if chunked:
            document = await _read_at_most(request.stream(), MAX_LIST)
            await run_in_threadpool(_store_chunk_list, store, address, document)
        else:
            await run_in_threadpool(_store_body, store, address,
                                    _Body(request.stream()), length)
    except ClientDisconnect:  # nothing became visible, and nobody is left to answer
        cut = InvalidInput(f"the upload of {address} was cut off", digest=address)
        return JSONResponse(cut.to_dict(), status_code=cut.http_status)
    return JSONResponse({"digest": address, "stored": True}, status_code=201)


async def put_batch(request: Request) -> JSONResponse:
    await run_in_threadpool(_authorize, request, Permission.CONTRIBUTE, "upload content",
                            "put_content_batch")
    try:
        received, stored = await run_in_threadpool(_store_frames, _store(request),
                                                   _Body(request.stream()))
    except ClientDisconnect:  # what arrived whole is stored; nobody is left to answer
        cut = InvalidInput("the batch upload was cut off")
        return JSONResponse(cut.to_dict(), status_code=cut.http_status)
    return JSONResponse({"received": received, "stored": stored})


def get_content(request: Request, digest: str) -> Response:
    address = _address(request, digest)
    _authorize(request, Permission.READ, "read content")
    store = _store(request)
    stored = store.stored_size(address)
    listed = list_at(store, address, stored)
    size = stored if listed is None else listed.size
    headers = {"accept-ranges": "bytes", "etag": f'"{address}"',
               "content-type": "application/octet-stream"}
    try:
        wanted = _byte_range(request.headers.get("range"), size)
    except _Unsatisfiable:
        error = InvalidInput(f"range {request.headers.get('range')!r} is outside the "
                             f"{size} bytes of {address}", digest=address, size=size)
        return JSONResponse(error.to_dict(), status_code=416,
                            headers={"content-range": f"bytes */{size}"})
    start, stop = (0, size) if wanted is None else wanted
    status = 200 if wanted is None else 206
    if wanted is not None:
        headers["content-range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["content-length"] = str(stop - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    pieces = _verified_pieces(store, address, listed, start, stop)
    # The first piece is read here, so a missing or (small and) corrupt object is a proper
    # error response rather than a cut-off stream.
    first = next(pieces, None)
    return StreamingResponse(chain([] if first is None else [first], pieces),
                             status_code=status, headers=headers)


# -- checks at the boundary ----------------------------------------------------------------

def _authorize(request: Request, permission: Permission, what: str,
               audited_as: str | None = None) -> None:
    """Refuse a caller whose token does not allow ``what``; a refused upload is audited."""
    db = request.app.state.backend.db
    principal: Principal | None = None
    try:
        principal = principal_of(request, db)
        principal.require(permission, what)
    except (Unauthenticated, PermissionDenied) as refused:
        if audited_as is not None:
            audit_refusal(db, refused, audited_as, principal)
        raise


def _store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.backend.store
    return store


def _canonical(digest: str) -> str:
    parse_digest(digest)  # InvalidInput unless exactly blake3:<64 lowercase hex>
    return digest


def _address(request: Request, digest: str) -> str:
    """The path's digest, canonical and exactly as sent: a percent-encoded form (which
    the router has already decoded) is refused like any other variant."""
    _canonical(digest)
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and not raw.endswith(b"/" + digest.encode("ascii")):
        raise InvalidInput(f"the digest in {raw.decode('latin-1')!r} is percent-encoded",
                           hint="send 'blake3:' and 64 lowercase hex as they are")
    return digest


def _content_length(request: Request) -> int | None:
    text = request.headers.get("content-length")
    if text is None:
        return None
    if not _is_number(text):
        raise InvalidInput(f"invalid Content-Length {text!r}")
    return int(text)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # "²".isdigit() too, which int() refuses


class _Unsatisfiable(Exception):
    """A range that selects none of the content (answered 416)."""


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a single ``bytes=`` range; None for no range or one this server
    does not serve (several ranges, other units, bad syntax: RFC 9110 lets a server answer
    those with the whole content); _Unsatisfiable if it selects nothing."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    first, dash, last = (part.strip() for part in spec.partition("-"))
    if unit.strip().lower() != "bytes" or not dash or "," in spec or not (first or last) or (
            any(part and not _is_number(part) for part in (first, last))):
        return None
    if not first:  # the last N bytes
        if not int(last) or not size:
            raise _Unsatisfiable
        return max(size - int(last), 0), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _Unsatisfiable
    return start, size if not last else min(int(last) + 1, size)


# -- storing -------------------------------------------------------------------------------

def _store_body(store: ObjectStore, address: str, body: _Body, length: int | None) -> None:
    try:
        store.put_stream(body, address, size_hint=length)
    except IntegrityError as mismatch:
        raise InvalidInput(f"the body does not hash to {address}: {mismatch.message}; "
                           "nothing was stored", hint="send the content of that digest",
                           digest=address) from None


def _store_chunk_list(store: ObjectStore, address: str, document: bytes) -> None:
    """Accept the chunk list of the file ``address`` only if the store chunks files that
    large, holds every chunk at the size listed, and the chunks hash, together, to it."""
    listed = chunk_lists.parse(document, address)
    if listed is None:
        raise InvalidInput(f"the body is not a chunk list of {address}",
                           hint="send the chunk-list document that names this digest",
                           digest=address)
    rules = store.chunking
    if rules is None or not rules.applies(listed.size):
        raise InvalidInput(f"a file of {listed.size} bytes is stored whole here, not as "
                           "chunks", hint="PUT its content without chunked=1",
                           digest=address)
    sizes = listed.sizes()
    stored = store.stored_sizes(sizes)
    wrong = sorted(d for d, n in sizes.items() if stored.get(d) != n)
    if wrong:
        raise InvalidInput(f"{len(wrong)} chunk(s) of {address} are not stored at the size "
                           f"listed, e.g. {wrong[0]}", hint="upload the missing chunks first",
                           digest=address, chunks=wrong[:100])
    # One hash of the whole file proves every chunk too, so they are read unhashed; and
    # single-threaded, as BLAKE3's pool woken per ~1 MiB chunk costs more than it saves.
    with unchecked_reader(store, listed) as chunks:
        actual, _ = hash_stream(chunks)
    if actual != address:
        raise InvalidInput(f"the chunks listed assemble into {actual}, not {address}",
                           digest=address)
    store.put_bytes(listed.to_bytes(), digest=address)


def _store_frames(store: ObjectStore, body: _Body) -> tuple[int, int]:
    """Store the batch's objects as their frames arrive; ``(received, stored)`` counts
    them. A frame that is malformed, cut short or does not hash to its digest ends the
    batch (InvalidInput); every object before it is whole and kept."""
    received = 0

    def frames() -> Iterator[tuple[str, Pieces]]:
        nonlocal received
        while header := body.line(_FRAME_HEADER):
            digest, size = _frame_header(header)
            pieces = body.take(size)
            if sum(len(piece) for piece in pieces) != size:
                raise InvalidInput(f"the batch ends inside the frame of {digest}",
                                   digest=digest)
            received += 1
            yield digest, pieces

    try:
        stored = store.put_many(frames())
    except IntegrityError as mismatch:
        raise InvalidInput(f"{mismatch.message}; it and the frames after it were not stored",
                           hint="send the content of that digest",
                           digest=mismatch.details.get("digest")) from None
    return received, stored


def _frame_header(line: bytes) -> tuple[str, int]:
    """The digest and size a frame's header line announces."""
    text = line.decode("ascii", "replace")
    digest, space, size = text.removesuffix("\n").partition(" ")
    if not line.endswith(b"\n") or not space or not _is_number(size) or int(
            size) > MAX_FRAME:
        raise InvalidInput(f"not a frame header (blake3:<64 hex> <size at most {MAX_FRAME}>"
                           f"): {text[:_FRAME_HEADER]!r}")
    return _canonical(digest), int(size)


async def _read_at_most(stream: AsyncIterator[bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    async for piece in stream:
        total += len(piece)
        if total > limit:
            raise InvalidInput(f"a chunk list is at most {limit} bytes")
        parts.append(piece)
    return b"".join(parts)


class _Body(io.RawIOBase):
    """The request body as a blocking stream, for the store's writer in a worker thread:
    it waits on the event loop only when what arrived is not enough, and hands bytes on
    in the pieces the server received them in (``take``), so a batch's objects are hashed
    and written without being copied together. It holds at most the bytes asked for (a
    frame, or ``_PIECE`` for ``readinto``) plus one received piece."""

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._stream = stream
        self._pieces: deque[memoryview] = deque()  # arrived, not taken yet
        self._held = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = 0
        for piece in self.take(min(len(view), _PIECE)):
            view[n:n + len(piece)] = piece
            n += len(piece)
        return n

    def take(self, wanted: int) -> list[memoryview]:
        """The next ``wanted`` bytes (fewer only where the body ends), as views of the
        pieces they arrived in."""
        self._fill(wanted)
        taken: list[memoryview] = []
        while wanted and self._pieces:
            piece = self._pieces.popleft()
            if len(piece) > wanted:
                self._pieces.appendleft(piece[wanted:])
                piece = piece[:wanted]
            taken.append(piece)
            wanted -= len(piece)
            self._held -= len(piece)
        return taken

    def line(self, limit: int) -> bytes:
        """The bytes up to and including the next newline, or the first ``limit`` bytes
        if none comes before (b"" at the end of the body)."""
        self._fill(limit)
        head = bytearray()
        for piece in self._pieces:
            head += piece[:limit - len(head)]
            if len(head) == limit:
                break
        end = head.find(b"\n")
        return b"".join(self.take(len(head) if end < 0 else end + 1))

    def _fill(self, wanted: int) -> None:
        while self._held < wanted and not self._done:
            for piece in anyio.from_thread.run(self._gather, wanted - self._held):
                self._pieces.append(memoryview(piece))
                self._held += len(piece)

    async def _gather(self, wanted: int) -> list[bytes]:
        parts: list[bytes] = []
        total = 0
        while total < wanted:
            try:
                piece = await self._stream.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            parts.append(piece)
            total += len(piece)
        return parts


# -- reading -------------------------------------------------------------------------------

def _verified_pieces(store: ObjectStore, address: str, listed: ChunkList | None,
                     start: int, stop: int) -> Iterator[bytes]:
    """Bytes ``[start, stop)`` of the content, none of them unverified for long: a whole
    object is hashed to its end, past the range, and its last piece is held back until it
    verified; so is a chunked file read whole (its chunks read unhashed: the one hash of
    the whole file proves them all), while a range of one reads only the chunks it
    covers, each verified before any of its bytes is sent. A mismatch raises, which cuts
    the response off. The whole-file hasher here is single-threaded: it is fed a chunk at
    a time, and BLAKE3's thread pool woken for each ~1 MiB update costs more CPU than it
    saves."""
    reader: io.RawIOBase
    whole: Any = None
    if listed is not None and (start, stop) == (0, listed.size):
        reader, whole = unchecked_reader(store, listed), new_hasher()
    elif listed is not None:
        covering = [(offset, chunk, n) for offset, chunk, n in listed.ranges()
                    if offset < stop and start < offset + n]
        base = covering[0][0] if covering else 0
        reader = ChunkedReader(store, ChunkList(address, sum(n for _, _, n in covering),
                                                tuple((c, n) for _, c, n in covering)))
        start, stop = start - base, stop - base
    else:
        reader = store.open_verified(address)
    with reader:
        held: bytes | None = None
        position = 0
        while piece := reader.read(_PIECE):
            if whole is not None:
                whole.update(piece)
            low, high = max(start - position, 0), min(stop - position, len(piece))
            position += len(piece)
            if low < high:
                if held is not None:
                    yield held
                held = piece[low:high]
        if whole is not None and (actual := format_digest(whole.hexdigest())) != address:
            explain_mismatch(store, reader)  # names the damaged chunk, if one is
            raise IntegrityError(f"object {address} is damaged: its chunks assemble into "
                                 f"{actual}", digest=address)
        if held is not None:
            yield held
