"""The content plane: every use case that reads or writes the caller's files.

Each one hashes and moves bytes through a ``ContentStore`` by digest, then calls one
metadata operation of the registry API with the digests (never a path). The same class
serves the embedded registry (the metadata API is the in-process ``Registry``, the store
its own) and a remote client (metadata over HTTP, content uploaded by digest), so neither
face writes these steps again. A remote client registering a small file tries the metadata
call first, over the file's digest: the call checks the content is stored before it
commits, so content the server already has costs one request, and content it lacks is
uploaded and the call made again (``_stored_then``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol, TypeVar

from modelyard.domain import pointer as pointers
from modelyard.domain.content import DataInput, StoredContent, content_kind
from modelyard.domain.datasets import DatasetVersion, is_dataset_uri
from modelyard.domain.entities import ModelVersion
from modelyard.domain.names import check_version_fields
from modelyard.domain.principal import Permission, Principal
from modelyard.domain.runs import Run, RunArtifact, is_run_uri
from modelyard.errors import IntegrityError, InvalidInput
from modelyard.flavors import load_model
from modelyard.services.content import ContentStore
from modelyard.services.data.scan import describe
from modelyard.services.data.transfer import object_digests
from modelyard.services.data.workspace import Workspace
from modelyard.services.operations import operation
from modelyard.storage.content.hashing import hash_file, hash_files
from modelyard.storage.content.manifest import Manifest, check_path
from modelyard.storage.content.objects import StoredTree

Progress = Callable[[int], None]
T = TypeVar("T")


class MetadataApi(Protocol):
    """The metadata operations the content plane finishes each use case with."""

    @property
    def principal(self) -> Principal: ...

    def create_version(
        self, name: str, content: StoredContent | str, *,
        params: dict[str, Any] | None = ..., metrics: dict[str, Any] | None = ...,
        tags: dict[str, Any] | None = ..., description: str = ...,
        aliases: Iterable[str] = ..., lineage: dict[str, Any] | None = ...,
        run: str | None = ..., parent: str | None = ...,
        datasets: Iterable[str | DataInput] = ..., actor: str | None = ...,
    ) -> ModelVersion: ...

    def get_version(self, name_or_uri: str, version: str | int | None = ...) -> ModelVersion: ...

    def create_dataset_version(
        self, name: str, content: StoredContent, *, source: str = ...,
        description: str = ..., tags: Mapping[str, Any] | None = ..., actor: str | None = ...,
    ) -> DatasetVersion: ...

    def get_dataset(self, name_or_uri: str,
                    version: int | str | None = ...) -> DatasetVersion: ...

    def dataset_input(self, ref: str | DataInput) -> dict[str, Any]: ...

    def record_run_input(self, run_id: str, ref: str | DataInput, *,
                         actor: str | None = ...) -> dict[str, Any]: ...

    def record_run_artifact(self, run_id: str, content: StoredContent, artifact_path: str,
                            *, flavor: str | None = ..., actor: str | None = ...
                            ) -> RunArtifact: ...

    def check_running(self, run_id: str) -> None: ...

    def run_artifact(self, uri: str) -> tuple[Run, RunArtifact]: ...


class Files:
    """Register, download and load models, datasets and run artifacts from and to paths."""

    def __init__(self, api: MetadataApi, content: ContentStore) -> None:
        self.api = api
        self.content = content

    @property
    def principal(self) -> Principal:
        return self.api.principal

    # -- models -------------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def register(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        description: str = "",
        aliases: Iterable[str] = (),
        lineage: dict[str, Any] | None = None,
        run: str | None = None,
        parent: str | None = None,
        datasets: Iterable[str | os.PathLike[str]] = (),
        actor: str | None = None,
        progress: Progress | None = None,
    ) -> ModelVersion:
        """Store the artifact (file or directory) and create the next version of ``name``.

        The content goes to the object store first (idempotent, content-addressed; a
        remote client first tries the metadata over a small file's digest, which the
        server accepts only if it holds that content); the metadata follows in one
        transaction, so a failure leaves at worst an unreferenced object, never a version
        without content. ``path`` may be ``runs:/<run_id>/<path>``
        (that run's artifact); ``run`` and ``parent`` (``NAME/VERSION``) record lineage, and
        the run's params and metrics become the version's unless given. ``datasets``
        (paths, ``.yard`` pointers, ``datasets:/NAME/V``) are recorded with their digests
        under ``lineage["datasets"]``.
        """
        check_version_fields(name, params, metrics, tags, aliases)  # before any upload
        inputs = [self._describe_input(d) for d in datasets]

        def create(source: StoredContent | str) -> ModelVersion:
            return self.api.create_version(
                name, source, params=params, metrics=metrics, tags=tags,
                description=description, aliases=aliases, lineage=lineage, run=run,
                parent=parent, datasets=inputs, actor=actor)

        if is_run_uri(path):
            return create(str(path))
        return self._stored_then(create, path, progress, "artifact path")

    @operation(Permission.READ)
    def download(
        self,
        name_or_uri: str,
        dest: str | os.PathLike[str],
        *,
        version: str | int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Write a version's artifact (or a run's: ``runs:/<run_id>/<path>``) under
        ``dest``; every byte is checked against its digest.

        A single-file artifact lands as ``dest/<file name>``, a directory's files directly
        under ``dest``. On any failure nothing partial is left behind.
        """
        if is_run_uri(name_or_uri):
            _, artifact = self.api.run_artifact(name_or_uri)
            digest, kind, name = artifact.digest, artifact.kind, artifact.artifact_name
        else:
            found = self.api.get_version(name_or_uri, version)
            digest, kind, name = found.digest, found.artifact_kind, found.artifact_name
        self._materialize(digest, kind, name, dest, progress)
        return Path(dest) / name if kind == "file" else Path(dest)

    @operation(Permission.READ)
    def load(self, name_or_uri: str, *, version: str | int | None = None,
             dest: str | os.PathLike[str] | None = None) -> Any:
        """A live object through the flavor the version was logged with (``modelyard.flavors``).

        A version without a flavor descriptor gives its verified local path. The local copy
        is re-hashed against the digest before any flavor reads it, cached or not, since
        pickle-based flavors run code on load.
        """
        found = self.api.get_version(name_or_uri, version)
        cache = Path(dest) if dest else load_cache_path(found)
        if not cache.exists():
            staging = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            try:
                self._materialize(found.digest, found.artifact_kind, found.artifact_name,
                                  staging, None)
                os.replace(staging, cache)
            except OSError:
                if not cache.exists():  # a concurrent loader that won the race is fine
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        path = cache / found.artifact_name if found.artifact_kind == "file" else cache
        local = hash_file(path) if found.artifact_kind == "file" else (
            Manifest.from_directory(path, hash_files).digest)
        if local != found.digest:
            raise IntegrityError(
                f"the local copy of {found.uri} at {path} does not match its digest",
                hint=f"delete {cache} and load again", digest=found.digest)
        return load_model(path)

    # -- datasets -----------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def register_dataset(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
        progress: Progress | None = None,
    ) -> DatasetVersion:
        """Store a file, folder or ``.yard`` pointer's data as the next version of ``name``.

        Content first (idempotent), then one transaction for the row and its audit event,
        so a failure leaves at worst an unreferenced object.
        """
        source = os.fspath(path)
        if pointers.is_pointer_path(source) and os.path.isfile(source):
            with Workspace.find(os.path.dirname(os.path.abspath(source))) as workspace:
                tracked = workspace.read_pointer(workspace.relpath(source))
                self.content.put_cached(workspace.cache,
                                        object_digests(workspace.cache, [tracked]), progress)
            found = tracked.pointer
            name_of_file = pointers.data_path(Path(source).name) if found.kind == "file" else ""
            content = StoredContent(found.digest, found.kind, found.size, found.file_count,
                                    name_of_file)
            return self.api.create_dataset_version(name, content, source=source,
                                                   description=description, tags=tags,
                                                   actor=actor)
        return self._stored_then(
            lambda content: self.api.create_dataset_version(
                name, content, source=source, description=description, tags=tags,
                actor=actor),
            source, progress, "dataset path", workspace_cache=True)

    @operation(Permission.READ)
    def download_dataset(
        self, uri: str, dest: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> Path:
        """Write a dataset version under ``dest``, every byte verified; no git needed."""
        found = self.api.get_dataset(uri)
        return Path(self._materialize(found.digest, found.kind, found.artifact_name, dest,
                                      progress))

    @operation(Permission.READ)
    def resolve_dataset_input(self, ref: str | os.PathLike[str]) -> dict[str, Any]:
        """Digest, size and file count of a dataset input, for lineage.

        ``ref`` is a ``datasets:/NAME/V`` address, a ``.yard`` pointer file or a path to
        data (hashed through the workspace's state cache when there is one; it need not
        be stored). ``name``/``version`` name the registered version holding that exact
        content, or are None.
        """
        return self.api.dataset_input(self._describe_input(ref))

    # -- runs ---------------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def log_run_input(self, run_id: str, ref: str | os.PathLike[str], *,
                      actor: str | None = None) -> dict[str, Any]:
        """Record a dataset the run read: a path, a ``.yard`` pointer or ``datasets:/N/V``."""
        return self.api.record_run_input(run_id, self._describe_input(ref), actor=actor)

    @operation(Permission.CONTRIBUTE)
    def log_run_artifact(
        self, run_id: str, path: str | os.PathLike[str], *, artifact_path: str | None = None,
        flavor: str | None = None, actor: str | None = None, progress: Progress | None = None,
    ) -> RunArtifact:
        """Store a file or folder as ``runs:/<run_id>/<artifact_path>`` (default: its name)."""
        target = check_path(artifact_path or Path(path).name)
        self.api.check_running(run_id)  # before storing: a closed run gets no new content
        return self._stored_then(
            lambda content: self.api.record_run_artifact(run_id, content, target,
                                                         flavor=flavor, actor=actor),
            path, progress, "artifact path")

    # -- the steps every use case shares ------------------------------------------------
    def _stored_then(self, create: Callable[[StoredContent], T],
                     path: str | os.PathLike[str], progress: Progress | None, what: str, *,
                     workspace_cache: bool = False) -> T:
        """``create`` (a metadata call, which checks its content is stored before it
        commits) over the content at ``path``, stored first.

        When the content store can describe the path without storing it (a remote one, for
        a small file), ``create`` is tried over that description first: content the
        registry already holds then costs no request to ask about it. If the registry
        refuses that content (it lacks it: the refusal names its digest), it is stored
        and ``create`` runs again, as it would have without the try."""
        source = os.fspath(path)
        described = self.content.describe(source) if os.path.exists(source) else None
        if described is not None:
            try:
                result = create(_content_of(source, described))
            except InvalidInput as refused:
                if refused.details.get("digest") != described.digest:
                    raise
            else:
                if progress is not None:  # what is already stored counts at once
                    progress(described.size)
                return result
        return create(self._put(source, progress, what, workspace_cache=workspace_cache))

    def _put(self, path: str | os.PathLike[str], progress: Progress | None, what: str, *,
             workspace_cache: bool = False) -> StoredContent:
        """Store a path; a dataset inside a data workspace reuses its state cache."""
        source = os.fspath(path)
        if not os.path.exists(source):
            raise InvalidInput(f"{what} {source!r} does not exist", path=source)
        ws = (Workspace.find_optional(os.path.dirname(os.path.abspath(source)))
              if workspace_cache else None)
        try:
            stored: StoredTree = self.content.put_tree(
                source, progress, cache=ws.state if ws is not None else None)
        finally:
            if ws is not None:
                ws.close()
        return _content_of(source, stored)

    def _materialize(self, digest: str, kind: str, name: str, dest: str | os.PathLike[str],
                     progress: Progress | None) -> str:
        """Write content under ``dest``; on any failure no folder of ours stays behind."""
        target = Path(dest)
        if target.exists() and not target.is_dir():
            raise InvalidInput(f"destination {str(dest)!r} is a file, not a folder")
        created = _missing_folders(target)
        try:
            target.mkdir(parents=True, exist_ok=True)
            return self.content.materialize(digest, content_kind(kind), target,
                                            filename=name or None, progress=progress)
        except BaseException:  # Ctrl-C included
            for folder in created:
                with suppress(OSError):  # not empty: someone else wrote there meanwhile
                    folder.rmdir()
            raise

    def _describe_input(self, ref: str | os.PathLike[str]) -> str | DataInput:
        """A ``datasets:/`` address as it is; a path or pointer described by digest."""
        text = os.fspath(ref)
        if is_dataset_uri(text):
            return text
        if not os.path.exists(text):
            raise InvalidInput(f"dataset input {text!r} is neither an existing path nor a "
                               "datasets:/NAME/VERSION address", path=text)
        if pointers.is_pointer_path(text) and os.path.isfile(text):
            with open(text, encoding="utf-8") as f:
                described = pointers.parse(f.read(), text)
        else:
            ws = Workspace.find_optional(os.path.dirname(os.path.abspath(text)))
            try:
                described = (describe(text, ws.state, ws.link_roots, ws.dirs) if ws is not None
                             else describe(text, None))
            finally:
                if ws is not None:
                    ws.close()
        return DataInput(described.digest, described.size, described.file_count, text)


def _content_of(source: str, stored: StoredTree) -> StoredContent:
    name = Path(source).name if stored.kind == "file" else ""
    return StoredContent(stored.digest, stored.kind, stored.size, stored.file_count, name)


def _missing_folders(target: Path) -> list[Path]:
    """``target`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    target = target.absolute()
    for folder in [target, *target.parents]:
        if folder.exists():
            break
        missing.append(folder)
    return missing


def load_cache_path(found: ModelVersion) -> Path:
    """Where ``load`` keeps a verified local copy of a version (by digest, so shared)."""
    root = Path(os.environ.get("MODELYARD_LOAD_CACHE", Path.home() / ".cache" / "modelyard"))
    return root / found.digest.split(":", 1)[1]
