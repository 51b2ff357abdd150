"""Fuzz every operation of the live server's OpenAPI with schemathesis, valid and invalid
inputs alike: no request may get a 5xx, and every error carries the one error body.

Random strings seldom name anything that exists, so the registry is seeded (a model with
versions, an alias, a request, an experiment and run, a dataset, a second user) and each
generated argument that names such a thing may be swapped for a real one: the fuzzer then
reaches the rules behind the lookups, not only the validation in front of them.

``MODELYARD_FUZZ_EXAMPLES`` sets the examples per operation and mode: the default (10) is
a fixed, derandomised run of well under a minute; a larger number (e.g. 500) is a random,
longer run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

import modelyard
from modelyard.domain.codec import encode
from modelyard.domain.content import StoredContent
from modelyard.domain.principal import Role
from server.conftest import LiveServer, bearer

DEFAULT_EXAMPLES = 10
EXAMPLES = int(os.environ.get("MODELYARD_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
ERROR_FIELDS = {"code", "message", "hint", "details"}
LAST = ("/api/v1/delete-", "/api/v1/disable-", "/api/v1/revoke-")
"""Operations that remove what the others need: fuzzed after every other one."""

STATS: dict[tuple[str, int], int] = {}
"""Responses by (operation, status): the fuzzer must reach past validation, too."""
pytestmark = [pytest.mark.postgres]


def _seed(server: LiveServer, tmp_path: Path) -> dict[str, list[Any]]:
    """Things that exist, by the argument names that name them."""
    reg = modelyard.connect(server.url, token=server.token)
    model, data = tmp_path / "model", tmp_path / "data"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 1000)
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,2\n")
    first = reg.register("m", model, metrics={"auc": 0.9}, aliases=["champion"])
    (model / "weights.bin").write_bytes(b"v" * 1000)
    reg.register("m", model, parent="models:/m/1")
    reg.transition("m", 2, "staging")
    reg.set_policy("m", approvals=1, reviewers=["ana"])
    request = reg.request_promotion("m", 2)
    reg.create_user("vic", Role.VIEWER)
    reg.create_experiment("e")
    run = reg.create_run("e")
    reg.log_metrics(run.run_id, {"loss": 0.5})
    artifact = reg.log_run_artifact(run.run_id, model / "weights.bin")
    reg.register_dataset("d", data)
    reg.close()
    content = encode(StoredContent(first.digest, "dir", first.size, first.file_count))
    return {
        "name": ["m", "e", "d", "vic"], "name_or_uri": ["m", "models:/m/1", "datasets:/d/1"],
        "version": [1, 2, "staging", "@champion", "latest"], "v1": [1], "v2": [2],
        "to": [1], "alias": ["champion"], "request_id": [request.id], "experiment": ["e"],
        "run_id": [run.run_id], "run": [run.run_id], "uri": [f"runs:/{run.run_id}/weights.bin"],
        "user": ["vic"], "actor": ["vic"], "digest": [first.digest], "digests": [[first.digest]],
        "content": [content, artifact.digest], "ref": ["datasets:/d/1"],
        "parent": ["models:/m/1"], "key": ["loss"], "stage": ["production", "archived"],
    }


def _steered(known: dict[str, list[Any]]) -> Callable[[Any, Any], st.SearchStrategy[Any]]:
    """A flatmap hook: each argument that names something may become a real one."""

    def hook(context: Any, arguments: Any) -> st.SearchStrategy[Any]:
        if not isinstance(arguments, dict):
            return st.just(arguments)
        return st.fixed_dictionaries({
            key: st.sampled_from([value, *known[key]]) if key in known else st.just(value)
            for key, value in arguments.items()})

    return hook


def _problem(case: schemathesis.Case, response: schemathesis.Response) -> str | None:
    """What is wrong with a response, if anything."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400 and case.method.upper() != "HEAD":
        body = response.json()
        if not isinstance(body, dict) or set(body.get("error", ())) != ERROR_FIELDS:
            return f"{response.status_code} without the error body: {response.text[:300]}"
    return None


def _fuzz(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode,
          send: Callable[[schemathesis.Case], schemathesis.Response]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES == DEFAULT_EXAMPLES,
              suppress_health_check=list(HealthCheck), database=None)
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = send(case)
        key = (operation.label, response.status_code)
        STATS[key] = STATS.get(key, 0) + 1
        problem = _problem(case, response)
        assert problem is None, f"{case.as_curl_command()}\n{problem}"

    run()


def test_no_input_gets_a_server_error(deploy: Callable[..., LiveServer], tmp_path: Path
                                      ) -> None:
    server = deploy(workers=1)
    known = _seed(server, tmp_path)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    for container in ("query", "body"):
        schema.hook(f"flatmap_{container}")(_steered(known))
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda operation: operation.path.startswith(LAST))
    failures: list[str] = []
    with requests.Session() as session:
        session.headers.update(bearer(server.token))

        def send(case: schemathesis.Case) -> schemathesis.Response:
            return case.call(base_url=server.url, session=session, timeout=30)

        for operation in operations:
            for mode in schemathesis.GenerationMode:
                try:
                    _fuzz(operation, mode, send)
                except AssertionError as failure:
                    failures.append(f"{operation.label} ({mode.value}): {failure}")
                except Unsatisfiable:  # nothing to get wrong: no parameters, no body
                    assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    assert not failures, "\n\n".join(failures)
    answered = {label for label, status in STATS if status < 300}
    assert len(answered) >= len(operations) // 2, f"only {sorted(answered)} ever succeeded"
