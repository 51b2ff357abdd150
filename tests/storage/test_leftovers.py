"""Finding 5 of issue 9: what killed or interrupted writers leave, and removing it.

A register killed with SIGKILL between writing an object and renaming it leaves its
temporary file; ``verify`` reports it and ``cleanup`` removes it once it is older than
the grace period (never a young one: its writer may still be running). A failed or
interrupted download leaves no folder it created, and Ctrl-C says what was stored.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.storage.content.leftovers import find_leftovers, remove_leftovers
from modelyard.storage.content.objects import ObjectStore

# A register that stops forever just before its first object is renamed into place, so
# the parent can kill it at exactly that point.
_STALLED_REGISTER = textwrap.dedent("""
    import os, sys, time
    import modelyard
    real = os.replace
    def stall(src, dst, *a, **k):
        if ".modelyard-" in str(src) and os.sep + "objects" + os.sep in str(dst):
            print("stalled", flush=True)
            time.sleep(600)
        return real(src, dst, *a, **k)
    os.replace = stall
    modelyard.connect(home=sys.argv[1], user="alice").register("fraud", sys.argv[2])
""")


def _cli(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return json.loads(result.stdout) if "--json" in args else result


def _kill_register_mid_write(home: Path, source: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _STALLED_REGISTER, str(home), str(source)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "stalled"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _age(paths: list[str], seconds: float) -> None:
    past = time.time() - seconds
    for path in paths:
        os.utime(path, (past, past))


def test_killed_register_leftover_is_reported_then_cleaned_after_the_grace_period(
    cli_home: Path, model_dir: Path
) -> None:
    _kill_register_mid_write(cli_home, model_dir)
    report = _cli("verify", "--json")
    assert report["leftover_count"] == 1 and report["leftover_bytes"] > 0
    assert "cleanup" in _cli("verify").stdout

    young = _cli("cleanup", "--json")  # default grace: 1 h; this leftover is seconds old
    assert young["removed_count"] == 0
    leftovers = [f.path for f in find_leftovers(ObjectStore(str(cli_home / "objects")))]
    _age(leftovers, 2 * 3600)
    dry = _cli("cleanup", "--dry-run", "--json")
    assert dry["removed_count"] == 1 and all(os.path.exists(p) for p in leftovers)
    done = _cli("cleanup", "--json")
    assert done["removed_count"] == 1 and done["removed_bytes"] == report["leftover_bytes"]
    assert not any(os.path.exists(p) for p in leftovers)
    assert _cli("verify", "--json")["leftover_count"] == 0
    _cli("register", "fraud", str(model_dir))  # and the registry works as before
    assert _cli("verify", "--json")["ok"]


def test_cleanup_of_a_folder_remote_and_a_short_grace(tmp_path: Path, cli_home: Path) -> None:
    remote = ObjectStore(str(tmp_path / "remote"))
    digest = remote.put_bytes(b"kept")
    stray = Path(remote.local_path(digest)).parent / ".modelyard-0123456789abcdef.tmp"
    stray.write_bytes(b"half an upload")
    _age([str(stray)], 120)
    assert _cli("cleanup", str(tmp_path / "remote"), "--older-than", "30m",
                "--json")["removed_count"] == 0
    assert _cli("cleanup", str(tmp_path / "remote"), "--older-than", "1m",
                "--json")["removed_count"] == 1
    assert not stray.exists() and remote.exists(digest)
    _cli("cleanup", "--older-than", "soon", code=1)


@pytest.mark.s3
def test_incomplete_s3_uploads_are_leftovers(s3_location: Any) -> None:
    import boto3

    store = ObjectStore(s3_location.url, s3_location.storage_options)
    prefix = s3_location.url.split("/", 3)[3]
    client = boto3.client("s3", endpoint_url=s3_location.endpoint_url)
    client.create_multipart_upload(Bucket=s3_location.bucket, Key=f"{prefix}/ab/killed-push")
    found = find_leftovers(store)
    assert len(found) == 1 and found[0].upload_id
    # (moto reports a fixed 2010 start time, so the grace period is tested on folders)
    assert len(remove_leftovers(store, older_than=3600, dry_run=True)) == 1
    assert len(remove_leftovers(store, older_than=3600)) == 1
    assert find_leftovers(store) == []


def test_a_failed_download_leaves_no_folder_it_created(
    cli_home: Path, model_dir: Path, tmp_path: Path
) -> None:
    version = _cli("register", "fraud", str(model_dir), "--json")
    ObjectStore(str(cli_home / "objects")).delete(version["digest"])  # the manifest is gone
    out = tmp_path / "new" / "deeper" / "out"
    result = _cli("download", "models:/fraud/1", "-o", str(out), code=1)
    assert "error:" in result.stderr
    assert not (tmp_path / "new").exists()


def test_ctrl_c_says_what_was_and_was_not_stored(
    cli_home: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.storage.content import objects

    def interrupt(*_args: Any, **_kwargs: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(objects.ObjectStore, "put_bytes", interrupt)  # the manifest, last
        result = _cli("register", "fraud", str(model_dir), code=130)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no version of fraud was registered" in lines[0]
    assert "bytes had been copied" in lines[0]
    _cli("models", "list")

    _cli("register", "fraud", str(model_dir))
    with monkeypatch.context() as patch:
        patch.setattr(objects.ObjectStore, "fetch_entry", interrupt)
        result = _cli("download", "models:/fraud/1", "-o", str(tmp_path / "out"), code=130)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing of models:/fraud/1 was written" in lines[0]
    assert not (tmp_path / "out").exists()
