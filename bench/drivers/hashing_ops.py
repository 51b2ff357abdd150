"""Scenario 10: how fast this machine can hash, the ceiling for every data operation.

BLAKE3 goes through Modelyard's own ``hash_file`` (multithreaded above its threshold),
MD5 through ``hashlib`` as DVC does; both stream a file the previous run left in the
page cache, so the figure is the hashing limit, not the disk's.
"""

from __future__ import annotations

import hashlib

from bench.drivers.common import Args, Report, serve
from modelyard.storage.content.hashing import CHUNK_SIZE, hash_file


def _md5(path: str) -> str:
    digest = hashlib.md5()
    buffer = memoryview(bytearray(CHUNK_SIZE))
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(buffer[:n])
    return digest.hexdigest()


def hash_throughput(args: Args, report: Report) -> None:
    algo, path, size = args["algo"], args["file"], int(args["size"])
    phase = f"hash {size / 2**20:,.0f} MiB"
    with report.phase(phase):
        hash_file(path) if algo == "blake3" else _md5(path)
    report.extra.update(algo=algo, MB_per_s=size / report.phases[phase] / 1e6)


if __name__ == "__main__":
    serve({"hash": hash_throughput})
