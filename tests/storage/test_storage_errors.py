"""Finding 11 of issue 9: an unusable S3 store is one clear line, quickly, never a traceback.

A missing bucket, an endpoint that answers 404 to everything and a refused connection must
each surface as ``StorageUnavailable`` naming the bucket or URL, with a hint, from the
registry (``register --store s3://…``) and from the data commands (``data push``).
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.errors import StorageUnavailable
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.objects import ObjectStore

pytestmark = pytest.mark.s3


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _assert_one_line_error(result: Any, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error:") and lines[-1].startswith("hint:"), lines
    assert len(lines) <= 4, lines
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture
def missing_bucket(moto_endpoint: str) -> str:
    return "s3://no-such-bucket-modelyard/models"


@pytest.fixture
def answers_404() -> Iterator[str]:
    """An HTTP endpoint that answers 404 to every request (a wrong --endpoint-url)."""

    class NotHere(http.server.BaseHTTPRequestHandler):
        def _nothing(self) -> None:
            self.close_connection = True  # never read a body: answer and hang up
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _nothing

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotHere)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_register_into_a_missing_bucket_is_one_line(
    cli_home: Path, model_dir: Path, missing_bucket: str
) -> None:
    result = _cli("--store", missing_bucket, "register", "fraud", str(model_dir))
    _assert_one_line_error(result, "no-such-bucket-modelyard", "bucket")


def test_data_push_to_a_missing_bucket_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_home: Path, missing_bucket: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    monkeypatch.chdir(repo)
    Workspace.init(repo).close()
    (repo / "data.csv").write_text("a,b\n1,2\n")
    assert _cli("data", "add", "data.csv").exit_code == 0
    assert _cli("data", "remote", "add", "origin", missing_bucket, "--default").exit_code == 0
    _assert_one_line_error(_cli("data", "push"), "no-such-bucket-modelyard")


def test_an_endpoint_answering_404_is_storage_unavailable(
    answers_404: str, model_dir: Path
) -> None:
    store = ObjectStore("s3://bucket/prefix", {"endpoint_url": answers_404})
    with pytest.raises(StorageUnavailable, match="bucket") as caught:
        store.put_tree(model_dir)
    assert caught.value.hint and "endpoint" in caught.value.hint


def test_a_refused_connection_fails_fast_with_bounded_retries(model_dir: Path) -> None:
    store = ObjectStore("s3://bucket/prefix", {"endpoint_url": "http://127.0.0.1:9"})
    config = store.fs.config_kwargs
    assert config["connect_timeout"] <= 3
    assert config["retries"]["max_attempts"] <= 2
    assert store.fs.retries <= 2
    with pytest.raises(StorageUnavailable, match=r"127\.0\.0\.1:9") as caught:
        store.put_tree(model_dir)
    assert caught.value.hint


def test_caller_options_still_win_over_the_fail_fast_defaults() -> None:
    store = ObjectStore("s3://bucket/other", {
        "endpoint_url": "http://127.0.0.1:9", "config_kwargs": {"connect_timeout": 7}})
    assert store.fs.config_kwargs["connect_timeout"] == 7
    assert store.fs.config_kwargs["retries"]["max_attempts"] <= 2
