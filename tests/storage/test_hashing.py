"""Digests, streaming hashing and its memory bound."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from blake3 import blake3

from modelyard.errors import InvalidInput
from modelyard.storage.content.hashing import (
    CHUNK_SIZE,
    DIGEST_PREFIX,
    copy_and_hash,
    format_digest,
    hash_bytes,
    hash_file,
    hash_files,
    hash_stream,
    is_digest,
    parse_digest,
)

HEX = "ab" * 32


def reference(data: bytes) -> str:
    return DIGEST_PREFIX + blake3(data).hexdigest()


def test_digest_format_round_trip() -> None:
    digest = format_digest(HEX)
    assert digest == f"blake3:{HEX}"
    assert parse_digest(digest) == HEX
    assert is_digest(digest)


@pytest.mark.parametrize(
    "text",
    [
        "",
        HEX,
        f"sha256:{HEX}",
        f"blake3:{HEX.upper()}",
        f"blake3:{HEX[:-1]}",
        f"blake3:{HEX}0",
        f"blake3:{HEX}\n",
        f" blake3:{HEX}",
        None,
        42,
    ],
)
def test_malformed_digests_are_refused(text: object) -> None:
    assert not is_digest(text)
    with pytest.raises(InvalidInput, match="not a valid digest"):
        parse_digest(text)


def test_format_digest_refuses_bad_hex() -> None:
    with pytest.raises(InvalidInput):
        format_digest("xyz")


def test_hash_bytes_matches_blake3() -> None:
    assert hash_bytes(b"") == reference(b"")
    assert hash_bytes(b"hello") == reference(b"hello")


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17])
def test_hash_file_matches_blake3_and_reports_progress(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    seen: list[int] = []
    assert hash_file(path, progress=seen.append) == reference(data)
    assert sum(seen) == size


def test_hash_file_missing_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot hash"):
        hash_file(tmp_path / "nope")


def test_hash_files_keeps_order(tmp_path: Path) -> None:
    blobs = [os.urandom(n) for n in (0, 10, 1000, CHUNK_SIZE + 5)] * 5
    paths = []
    for i, blob in enumerate(blobs):
        path = tmp_path / f"f{i}"
        path.write_bytes(blob)
        paths.append(path)
    assert hash_files(paths, workers=4) == [reference(b) for b in blobs]
    # with sizes, the small ones are hashed in this thread meanwhile: same digests, same order
    sizes = [len(b) for b in blobs]
    assert hash_files(paths, workers=4, sizes=sizes) == [reference(b) for b in blobs]
    assert hash_files([]) == []


def test_copy_and_hash_copies_and_digests() -> None:
    data = os.urandom(2 * CHUNK_SIZE + 3)
    out = io.BytesIO()
    seen: list[int] = []
    digest, size = copy_and_hash(io.BytesIO(data), out, progress=seen.append)
    assert (digest, size) == (reference(data), len(data))
    assert out.getvalue() == data
    assert sum(seen) == len(data)
    assert hash_stream(io.BytesIO(data)) == (reference(data), len(data))


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    from modelyard.storage.content.hashing import hash_file

    def status_mib(key):
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith(key + ":"))
        return int(line.split()[1]) / 1024

    def peak_growth(action):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current RSS
        before = status_mib("VmRSS")
        result = action()
        return result, status_mib("VmHWM") - before

    path = sys.argv[1]
    digest, hash_growth = peak_growth(lambda: hash_file(path))
    # Control: the same probe must see a whole-file read.
    whole, read_growth = peak_growth(lambda: open(path, "rb").read())
    print(json.dumps({"digest": digest, "hash_growth": hash_growth, "read_growth": read_growth}))
    """
)


def test_hashing_a_large_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    """200 MiB hashed with well under 100 MiB of extra peak RSS (mmap or a full read
    would add ~200 MiB); the control read in the same process proves the probe sees it."""
    size_mib = 200
    path = tmp_path / "large.bin"
    expected = blake3(max_threads=blake3.AUTO)
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for i in range(size_mib):
            chunk = i.to_bytes(4, "big") + block[4:]
            f.write(chunk)
            expected.update(chunk)
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    probe = json.loads(result.stdout)
    assert probe["digest"] == DIGEST_PREFIX + expected.hexdigest()
    assert probe["hash_growth"] < 48, probe
    assert probe["read_growth"] > 150, probe  # the measurement is sensitive enough
