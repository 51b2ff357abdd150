"""Which data a repository still references: what ``data gc`` must keep.

The default scope is everything git itself would keep (see ``git.history_pointer_blobs``)
plus the index and the working tree. Narrower scopes keep the working tree and the index
and add, on request, the tips of branches (local and remote-tracking) and of tags; they
exist to free history on purpose and must be asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.domain import pointer as pointers
from modelyard.domain.pointer import DIGEST_RE, Pointer
from modelyard.errors import InvalidInput
from modelyard.services.data import git
from modelyard.services.data.workspace import Workspace


@dataclass(frozen=True)
class Scope:
    """What gc keeps. Nothing set, or ``all_commits``: everything reachable in git."""

    workspace: bool = False
    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False

    @property
    def everything(self) -> bool:
        return self.all_commits or not (self.workspace or self.all_branches or self.all_tags)

    def describe(self) -> list[str]:
        kept = ["working tree", "index"]
        if self.everything:
            return [*kept, "every commit reachable from a branch, tag, stash or reflog"]
        return (kept + (["branch tips"] if self.all_branches else [])
                + (["tags"] if self.all_tags else []))


@dataclass(frozen=True)
class References:
    pointers: set[Pointer]
    loose: set[str]
    """Digests named by pointer files in git that cannot be parsed (kept, never guessed)."""


def referenced(ws: Workspace, scope: Scope) -> References:
    """The pointers ``scope`` keeps, read with a fixed number of git processes."""
    found = {t.pointer for t in ws.tracked()}
    blobs = git.index_pointer_blobs(ws.root)
    if scope.everything:
        blobs |= git.history_pointer_blobs(ws.root)
    else:  # a few tips: one ls-tree each
        for commit in git.tip_commits(ws.root, branches=scope.all_branches, tags=scope.all_tags):
            blobs.update(git.pointer_blobs(ws.root, commit).values())
    loose: set[str] = set()
    for blob, content in git.read_blobs(ws.root, blobs).items():
        text = content.decode("utf-8", "replace")
        try:
            found.add(pointers.parse(text, f"git blob {blob}"))
        except InvalidInput:  # e.g. a newer pointer format: keep what it names
            loose.update(DIGEST_RE.findall(text))
    return References(found, loose)
