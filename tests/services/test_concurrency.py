"""Sixteen processes registering to one model get sixteen distinct, consecutive numbers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database

WRITERS = 16


def _register(args: tuple[str, str, str, int]) -> tuple[int, str]:
    url, store, artifact, index = args
    reg = Registry(Database(url), ObjectStore(store), user=f"writer{index}")
    try:
        version = reg.register("shared", artifact, params={"writer": index})
        return version.version, ""
    except Exception as exc:  # reported back, asserted below
        return -1, f"{type(exc).__name__}: {exc}"
    finally:
        reg.close()


def test_concurrent_writers_get_dense_unique_numbers(registry_url: str, tmp_path: Path) -> None:
    store = str(tmp_path / "objects")
    Registry(Database(registry_url), ObjectStore(store), user="setup").close()  # migrate once
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"same bytes for everyone")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(WRITERS) as pool:
        results = pool.map(_register, [(registry_url, store, str(artifact), i)
                                       for i in range(WRITERS)])
    assert [error for _, error in results if error] == []
    assert sorted(number for number, _ in results) == list(range(1, WRITERS + 1))
    reg = Registry(Database(registry_url), ObjectStore(store), user="check")
    versions = reg.list_versions("shared")
    assert sorted(v.params["writer"] for v in versions) == list(range(WRITERS))
    events = reg.audit()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    reg.close()
