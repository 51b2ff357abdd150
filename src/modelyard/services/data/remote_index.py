"""Which objects each remote is known to hold, recorded locally by push and fetch.

``status`` answers "not pushed" from this table without touching the network; push
itself always asks the remote, so a stale entry can never make it skip an upload.
The table lives in the workspace's ``state.db`` beside the hash cache.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelyard.storage.index.sqlite_file import connect, write_many

_SCHEMA = """
CREATE TABLE IF NOT EXISTS remote_objects (
    remote TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (remote, digest)
) WITHOUT ROWID
"""


class RemoteIndex:
    def __init__(self, db_path: str) -> None:
        self._db = connect(db_path, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def known(self, remote_url: str) -> set[str]:
        rows = self._db.execute("SELECT digest FROM remote_objects WHERE remote = ?",
                                (remote_url,))
        return {digest for (digest,) in rows}

    def add(self, remote_url: str, digests: Iterable[str]) -> None:
        write_many(self._db, "INSERT OR IGNORE INTO remote_objects (remote, digest)"
                   " VALUES (?, ?)", [(remote_url, d) for d in digests])

    def forget(self, remote_url: str, digests: Iterable[str]) -> None:
        write_many(self._db, "DELETE FROM remote_objects WHERE remote = ? AND digest = ?",
                   [(remote_url, d) for d in digests])
