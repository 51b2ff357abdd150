"""A data workspace: a git working tree with a ``.modelyard`` folder at its root.

``.modelyard/config`` (YAML, committed) holds remotes and the checkout link order;
``.modelyard/config.local`` (same shape, git-ignored) holds this machine's remote settings
(credentials, endpoints), merged over it; ``.modelyard/cache`` (an object store) and
``.modelyard/state.db`` (the hash cache) are local and git-ignored. Every operation opens
one ``Workspace`` and passes it around.

Every data path is validated when its pointer is read (``domain.workpaths``) and
again against the disk before anything is written (``Workspace.target``), because
pointer names come from whoever made the repository.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from modelyard.domain import pointer as pointers
from modelyard.domain import workpaths
from modelyard.domain.codec import Record
from modelyard.domain.pointer import Pointer
from modelyard.errors import InvalidInput, NotFound
from modelyard.services.data import git
from modelyard.services.data.dir_state import DirState
from modelyard.services.data.remote_index import RemoteIndex
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.index.state_cache import StateCache

DIR = ".modelyard"
LINK_STRATEGIES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_LINKS = ("reflink", "copy")
"""Private bytes only: an in-place edit of a checked-out file can never reach the cache."""
_OLD_DEFAULT_LINKS = list(LINK_STRATEGIES)
"""What ``data init`` wrote into every config before hardlinks became opt-in."""
LOCAL_CONFIG = "config.local"
_LOCAL_IGNORES = f"/cache/\n/state.db*\n/tmp/\n/{LOCAL_CONFIG}\n"


@dataclass
class Remote(Record):
    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Config:
    remotes: dict[str, Remote] = field(default_factory=dict)
    default_remote: str | None = None
    links: list[str] = field(default_factory=lambda: list(DEFAULT_LINKS))

    @classmethod
    def from_yaml(cls, text: str, source: str, *, partial: bool = False) -> Config:
        """Parse a config file; ``partial`` (config.local) lets a remote give only options."""
        import yaml  # imported on first use: a registry read never parses YAML

        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{source} is not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidInput(f"{source} must be a YAML mapping")
        remotes = {}
        for name, spec in (doc.get("remotes") or {}).items():
            url = spec.get("url", "" if partial else None) if isinstance(spec, dict) else None
            if not isinstance(url, str) or not isinstance(spec.get("options") or {}, dict):
                raise InvalidInput(f"{source}: remote {name!r} needs a 'url'"
                                   + (" or 'options'" if partial else ""))
            remotes[str(name)] = Remote(str(name), url, dict(spec.get("options") or {}))
        links = (doc.get("cache") or {}).get("link", list(DEFAULT_LINKS))
        links = [links] if isinstance(links, str) else list(links)
        unknown = [s for s in links if s not in LINK_STRATEGIES]
        if unknown or not links:
            raise InvalidInput(f"{source}: cache.link must list some of "
                               f"{', '.join(LINK_STRATEGIES)}; got {links!r}")
        if links == _OLD_DEFAULT_LINKS:  # written by init, not chosen: the safe default
            links = list(DEFAULT_LINKS)
        default = (doc.get("core") or {}).get("remote")
        return cls(remotes, str(default) if default else None, [str(s) for s in links])

    def to_yaml(self) -> str:
        doc: dict[str, Any] = {
            "core": {"remote": self.default_remote},
            "remotes": {
                r.name: {**({"url": r.url} if r.url else {}),
                         **({"options": r.options} if r.options else {})}
                for r in self.remotes.values()
            },
        }
        if self.links != list(DEFAULT_LINKS):
            doc["cache"] = {"link": self.links}
        import yaml

        return str(yaml.safe_dump(doc, sort_keys=False))


@dataclass(frozen=True)
class Tracked:
    """One pointer file and the data it stands for (paths relative to the root, POSIX)."""

    pointer_path: str
    data_path: str
    pointer: Pointer


class Workspace:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(root)
        self.dir = os.path.join(self.root, DIR)
        self.config_path = os.path.join(self.dir, "config")
        self.local_config_path = os.path.join(self.dir, LOCAL_CONFIG)
        try:
            with open(self.config_path, encoding="utf-8") as f:
                self.config = Config.from_yaml(f.read(), self.config_path)
        except FileNotFoundError:
            raise NotFound(f"{self.root} has no {DIR}/config",
                           hint="run 'modelyard data init' at the root of the repository") from None
        try:
            with open(self.local_config_path, encoding="utf-8") as f:
                self.local = Config.from_yaml(f.read(), self.local_config_path, partial=True)
        except FileNotFoundError:  # this machine's layer: remotes, their options, the default
            self.local = Config()
        self.remotes()  # a local override of a remote that does not exist fails here

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def init(cls, start: str | os.PathLike[str] = ".") -> Workspace:
        """Create ``.modelyard`` at the git root (idempotent) and open it."""
        root = git.find_root(start)
        os.makedirs(os.path.join(root, DIR), exist_ok=True)
        config = os.path.join(root, DIR, "config")
        if not os.path.exists(config):
            write_atomic(config, Config().to_yaml())
        ignore = os.path.join(root, DIR, ".gitignore")
        if not os.path.exists(ignore):
            write_atomic(ignore, _LOCAL_IGNORES)
        return cls(root)

    @classmethod
    def find(cls, start: str | os.PathLike[str] = ".") -> Workspace:
        """The workspace containing ``start`` (its nearest ancestor with ``.modelyard/config``)."""
        path = os.path.abspath(start)
        while True:
            if os.path.isfile(os.path.join(path, DIR, "config")):
                return cls(path)
            parent = os.path.dirname(path)
            if parent == path:
                raise NotFound(f"{os.path.abspath(start)} is not in a Modelyard data workspace",
                               hint="run 'modelyard data init' in your git repository")
            path = parent

    @classmethod
    def find_optional(cls, start: str | os.PathLike[str]) -> Workspace | None:
        try:
            return cls.find(start)
        except NotFound:
            return None

    @cached_property
    def cache(self) -> ObjectStore:
        return ObjectStore(os.path.join(self.dir, "cache"), chunked=False)  # linked into the tree

    @property
    def link_roots(self) -> tuple[str, ...]:
        """Where checked-out symlinks may point: the cache."""
        return (self.cache.root,)

    @cached_property
    def state(self) -> StateCache:
        return StateCache(os.path.join(self.dir, "state.db"))

    @cached_property
    def remote_index(self) -> RemoteIndex:
        return RemoteIndex(os.path.join(self.dir, "state.db"))

    @cached_property
    def dirs(self) -> DirState:
        return DirState(os.path.join(self.dir, "state.db"))

    def close(self) -> None:
        for opened in ("state", "remote_index", "dirs"):
            if opened in self.__dict__:
                self.__dict__.pop(opened).close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save_config(self) -> None:
        write_atomic(self.config_path, self.config.to_yaml())

    def save_local(self) -> None:
        """Write config.local, and make sure git ignores it (workspaces older than it)."""
        ignore = os.path.join(self.dir, ".gitignore")
        try:
            with open(ignore, encoding="utf-8") as f:
                ignored = f.read()
        except FileNotFoundError:
            ignored = ""
        if f"/{LOCAL_CONFIG}" not in ignored.splitlines():
            write_atomic(ignore, ignored + ("" if ignored.endswith("\n") or not ignored
                                            else "\n") + f"/{LOCAL_CONFIG}\n")
        write_atomic(self.local_config_path, self.local.to_yaml())

    # -- remotes: config.local over config ----------------------------------------------
    @property
    def default_remote(self) -> str | None:
        return self.local.default_remote or self.config.default_remote

    def remotes(self) -> dict[str, Remote]:
        """Every remote with this machine's settings merged over the committed ones."""
        merged = dict(self.config.remotes)
        for name, local in self.local.remotes.items():
            shared = merged.get(name)
            if shared is None and not local.url:
                raise InvalidInput(f"{self.local_config_path}: remote {name!r} has no 'url' and "
                                   f"{self.config_path} does not define it",
                                   hint=f"add its url, or 'modelyard data remote add {name} URL'")
            merged[name] = Remote(name, local.url or (shared.url if shared else ""),
                                  {**(shared.options if shared else {}), **local.options})
        return merged

    def setting_sources(self, name: str) -> dict[str, str]:
        """Which file each setting of remote ``name`` comes from: url and every option."""
        where = {}
        for file, layer in ((DIR + "/config", self.config), (DIR + "/" + LOCAL_CONFIG,
                                                                self.local)):
            remote = layer.remotes.get(name)
            if remote is not None:
                where.update({"url": file} if remote.url else {})
                where.update(dict.fromkeys(remote.options, file))
        return where

    # -- paths --------------------------------------------------------------------------
    def relpath(self, path: str | os.PathLike[str]) -> str:
        """``path`` (relative to the current directory) as a POSIX path below the root."""
        full = os.path.abspath(path)
        rel = os.path.relpath(full, self.root)
        if rel == "." or rel.startswith(".." + os.sep) or rel == ".." or os.path.isabs(rel):
            raise InvalidInput(f"{os.fspath(path)} is outside the working tree {self.root}",
                               path=os.fspath(path))
        rel = rel.replace(os.sep, "/")
        problem = workpaths.path_problem(rel)
        if problem is not None:
            raise InvalidInput(f"{os.fspath(path)} cannot hold tracked data: {problem}",
                               hint="rename it; Modelyard only tracks paths inside the working "
                                    "tree, outside .git and .modelyard", path=os.fspath(path))
        return rel

    def abspath(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))

    def target(self, rel: str, source: str) -> str:
        """The absolute path of data path ``rel``, once the disk agrees it is safe.

        ``rel`` already passed ``workpaths`` (every pointer is checked when read); here
        its existing parent folders are resolved, so a symlinked folder cannot lead a
        write or delete outside the tree or into ``.git``/``.modelyard``. InvalidInput
        names ``source`` (the pointer file).
        """
        full = self.abspath(workpaths.check_data_path(rel, source))
        real_root = os.path.realpath(self.root)
        real_parent = os.path.realpath(os.path.dirname(full))
        inside = os.path.relpath(real_parent, real_root)
        if inside == ".":
            return full
        if (inside == ".." or inside.startswith(".." + os.sep) or os.path.isabs(inside)
                or workpaths.path_problem(inside.replace(os.sep, "/")) is not None):
            raise InvalidInput(
                f"{source}: the folder of {rel} leads to {real_parent} through a symlink, "
                "outside the working tree or into a folder Modelyard never writes",
                hint=f"replace the symlinked folder by a real one, or delete {source}",
                path=source,
            )
        return full

    # -- pointers -----------------------------------------------------------------------
    def read_pointer(self, pointer_path: str) -> Tracked:
        """Parse one pointer file; InvalidInput if its name is not a safe data path."""
        data_path = workpaths.check_data_path(pointers.data_path(pointer_path), pointer_path)
        full = self.abspath(pointer_path)
        try:
            with open(full, encoding="utf-8") as f:
                parsed = pointers.parse(f.read(), pointer_path)
        except FileNotFoundError:
            raise NotFound(f"pointer file {pointer_path} not found", path=pointer_path) from None
        except UnicodeDecodeError:
            raise InvalidInput(f"{pointer_path} is not a text pointer file") from None
        return Tracked(pointer_path, data_path, parsed)

    def tracked(self, paths: Sequence[str | os.PathLike[str]] = ()) -> list[Tracked]:
        """Pointers selected by ``paths`` (data paths, pointer paths or folders holding
        them); every pointer in the working tree when ``paths`` is empty."""
        if not paths:
            found = [p for p in git.tracked_pointer_files(self.root)
                     if os.path.isfile(self.abspath(p))]
            return [self.read_pointer(p) for p in found]
        selected: dict[str, Tracked] = {}
        for path in paths:
            for item in self._select(self.relpath(path)):
                selected[item.pointer_path] = item
        return [selected[k] for k in sorted(selected)]

    def _select(self, rel: str) -> list[Tracked]:
        candidate = rel if pointers.is_pointer_path(rel) else rel + pointers.SUFFIX
        if os.path.isfile(self.abspath(candidate)):
            return [self.read_pointer(candidate)]
        parts = rel.split("/")
        for i in range(len(parts) - 1, 0, -1):  # a path inside a tracked folder
            owner = "/".join(parts[:i]) + pointers.SUFFIX
            if os.path.isfile(self.abspath(owner)):
                return [self.read_pointer(owner)]
        inside = [p for p in git.tracked_pointer_files(self.root) if p.startswith(rel + "/")]
        if not inside:
            raise NotFound(f"{rel} is not tracked by Modelyard",
                           hint=f"run 'modelyard data add {rel}'", path=rel)
        return [self.read_pointer(p) for p in inside if os.path.isfile(self.abspath(p))]


def write_atomic(path: str, text: str) -> None:
    """Replace a small text file in one step (temp file in the same folder, then rename)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


