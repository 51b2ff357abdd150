"""Files for MLflow clients: the ``mlflow-artifacts`` proxy, and what a version is made of.

An MLflow client logs a model file by file (one PUT each) to the location the server gave
its run or logged model. Each body is spooled to a temporary file and handed to the content
plane's ``log_run_artifact`` (stored by digest, recorded as the run's artifact at that path,
audited), so a run's files are its recorded artifacts. Registering a version from a
location gathers the files under it into a directory manifest: the version's content, in
the same store, with nothing copied. Every read goes through the registry as the caller and
every download is verified against its digest while it streams.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from modelyard.domain.content import StoredContent, content_kind
from modelyard.domain.entities import ModelVersion
from modelyard.domain.principal import Permission
from modelyard.domain.refs import is_model_uri
from modelyard.domain.runs import Run, is_run_uri, parse_run_uri
from modelyard.errors import InvalidInput, NotFound
from modelyard.server.content_routes import _verified_pieces
from modelyard.server.mlflow import places
from modelyard.server.mlflow.places import Place
from modelyard.server.mlflow.wire import ARTIFACT_PREFIXES, Call, Routes, serve, unsupported
from modelyard.services.registry import Registry
from modelyard.storage.content.manifest import Entry, Manifest
from modelyard.storage.content.objects import ObjectStore

Tree = dict[str, Entry]
proxy = Routes(ARTIFACT_PREFIXES)


# -- trees: the files of a run or a version, by path ---------------------------------------

def tree_of(store: ObjectStore, place: Place) -> Tree:
    """Every file of the run or version ``place`` is in (directories expanded)."""
    if place.version is not None:
        v = place.version
        if v.artifact_kind == "file":
            return {v.artifact_name: Entry(v.artifact_name, v.digest, v.size)}
        return {e.path: e for e in store.get_manifest(v.digest)}
    assert place.run is not None
    tree: Tree = {}
    for artifact in place.run.artifacts:
        if artifact.kind == "file":
            tree[artifact.path] = Entry(artifact.path, artifact.digest, artifact.size)
        else:
            for e in store.get_manifest(artifact.digest):
                path = f"{artifact.path}/{e.path}"
                tree[path] = Entry(path, e.digest, e.size, e.mode)
    return tree


def listing(tree: Tree, path: str) -> list[dict[str, Any]]:
    """The files and folders directly under ``path`` (names relative to it); a file or a
    path that holds nothing lists nothing, as MLflow's stores do."""
    prefix = f"{path}/" if path else ""
    children: dict[str, dict[str, Any]] = {}
    for name, entry in tree.items():
        if name.startswith(prefix):
            head, below, _ = name[len(prefix):].partition("/")
            children[head] = ({"path": head, "is_dir": True} if below else
                              {"path": head, "is_dir": False, "file_size": entry.size})
    return [children[k] for k in sorted(children)]


def content_at(store: ObjectStore, tree: Tree, path: str) -> StoredContent:
    """The file at ``path``, or the folder under it as a directory stored by its manifest
    (its files are already in the store: only the manifest is written)."""
    if path in tree:
        entry = tree[path]
        return StoredContent(entry.digest, "file", entry.size, 1, posixpath.basename(path))
    prefix = f"{path}/" if path else ""
    manifest = Manifest(Entry(p[len(prefix):], e.digest, e.size, e.mode)
                        for p, e in tree.items() if p.startswith(prefix))
    if not manifest.file_count:
        raise NotFound(f"no artifacts at {path or 'the root'!r} of this location")
    digest = store.put_bytes(manifest.to_bytes())
    return StoredContent(digest, "dir", manifest.total_size, manifest.file_count)


# -- what create-model-version registers ---------------------------------------------------

def version_source(registry: Registry, source: str, model_id: str | None
                   ) -> tuple[StoredContent, str | None]:
    """The content a new version is made of, and the run that produced it, from MLflow's
    ``source`` (``runs:/``, ``models:/<model id>``, ``models:/NAME/VERSION``, or an
    artifact location of this server) or from ``model_id``."""
    registry.principal.require(Permission.CONTRIBUTE, "register model versions")
    store = registry.store
    if model_id or source.startswith("models:/m-"):
        run = places.logged_model(registry, model_id or source[len("models:/"):])
        return content_at(store, tree_of(store, Place("", run=run)), ""), _producer(run)
    if is_run_uri(source):
        run_id, path = parse_run_uri(source)
        run = registry.get_run(run_id)
        return content_at(store, tree_of(store, Place(path, run=run)), path), run_id
    if is_model_uri(source):
        return _version_content(registry.get_version(source))
    proxied = places.artifact_path(source)
    if proxied is None:
        raise InvalidInput(
            f"cannot register {source[:200]!r}: the files must be in this server's store",
            hint="pass runs:/RUN_ID/PATH, models:/MODEL_ID, models:/NAME/VERSION or an "
                 "mlflow-artifacts: location of this server")
    place = places.locate(registry, proxied)
    if place.version is not None and not place.path:
        return _version_content(place.version)
    return content_at(store, tree_of(store, place), place.path), _producer(place.run)


def _producer(run: Run | None) -> str | None:
    """The run a version's lineage names: a logged model's is the run that logged it."""
    if run is None or not places.is_logged_model(run):
        return run.run_id if run is not None else None
    return run.tags.get(places.SOURCE_RUN) or None


def _version_content(v: ModelVersion) -> tuple[StoredContent, str | None]:
    """A registered version's content as it is, and the run that produced it."""
    return (StoredContent(v.digest, content_kind(v.artifact_kind), v.size, v.file_count,
                          v.artifact_name), v.lineage.get("run_id"))


# -- the proxy -----------------------------------------------------------------------------

@proxy.rpc("GET", "/artifacts")
def list_artifacts(call: Call) -> dict[str, Any]:
    place = places.locate(call.registry, call.text("path"))
    return {"files": listing(tree_of(call.store, place), place.path)}


@proxy.rpc("GET", "/artifacts/{artifact_path:path}")
def download_artifact(call: Call) -> Response:
    place = places.locate(call.registry, call.path["artifact_path"])
    entry = tree_of(call.store, place).get(place.path)
    if entry is None:
        raise NotFound(f"no artifact file {call.path['artifact_path']!r}")
    pieces = _verified_pieces(call.store, entry.digest, None, 0, entry.size)
    # The first piece is read here, so a missing object is an error response, not a
    # cut-off stream.
    first = next(pieces, b"")
    return StreamingResponse(_chain(first, pieces), media_type="application/octet-stream",
                             headers={"content-length": str(entry.size)})


@proxy.rpc("DELETE", "/artifacts/{artifact_path:path}")
def delete_artifact(call: Call) -> None:
    raise unsupported("deleting artifacts", "a run's recorded artifacts are part of its "
                                            "audited record")


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


async def upload_artifact(request: Request) -> Response:
    """PUT: the body becomes the artifact at that path of its run or logged model."""
    path = request.path_params["artifact_path"]
    return await serve(request, "upload_artifact", lambda registry: _store_upload(
        registry, request, path))


def _store_upload(registry: Registry, request: Request, path: str) -> dict[str, Any]:
    place = places.locate(registry, path)
    if place.run is None or not place.path:
        raise InvalidInput(f"cannot upload to {path!r}: name a file in a run's or a logged "
                           "model's artifact location")
    registry.principal.require(Permission.CONTRIBUTE, "upload artifacts")
    registry.check_running(place.run.run_id)  # before any byte is spooled
    with tempfile.TemporaryDirectory(prefix="modelyard-mlflow-") as spool:
        local = Path(spool) / posixpath.basename(place.path)
        with open(local, "wb") as out:
            for piece in _body(request):
                out.write(piece)
        registry.log_run_artifact(place.run.run_id, os.fspath(local),
                                  artifact_path=place.path)
    return {}


def _body(request: Request) -> Iterator[bytes]:
    """The request body, read from this worker thread through the event loop."""
    stream = request.stream()
    while True:
        try:
            yield anyio.from_thread.run(stream.__anext__)
        except StopAsyncIteration:
            return


def install(api: APIRouter) -> None:
    proxy.install(api)
    for prefix in ARTIFACT_PREFIXES:
        api.add_api_route(prefix + "/artifacts/{artifact_path:path}", upload_artifact,
                          methods=["PUT"], include_in_schema=False,
                          name="mlflow.upload_artifact")
