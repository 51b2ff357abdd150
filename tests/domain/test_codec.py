"""The codec: every record encodes to the JSON it always had and decodes back to itself.

The REST server and the HTTP client will share these dataclasses as their schema, so the
round trip is a property over every record type, and the encoded form is pinned, field by
field, to what the hand-written ``to_dict`` methods it replaced produced.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.domain.access import Token, TokenStatus, User
from modelyard.domain.audit_report import AuditReport, CheckpointCheck, Disagreement
from modelyard.domain.codec import Record, decode, encode
from modelyard.domain.datasets import DatasetVersion
from modelyard.domain.entities import (
    AuditEvent,
    GarbageReport,
    HistoryState,
    ModelVersion,
    RegisteredModel,
    VerifyReport,
)
from modelyard.domain.lineage import Lineage, VersionDiff
from modelyard.domain.paging import Page
from modelyard.domain.pointer import Pointer
from modelyard.domain.policy import (
    ChainReport,
    DecisionRecord,
    GateResult,
    Policy,
    PromotionRequest,
)
from modelyard.domain.principal import Role
from modelyard.domain.runs import Experiment, MetricPoint, Run, RunArtifact
from modelyard.domain.webhooks import Delivery, DeliveryTrigger, Webhook, WebhookStatus
from modelyard.errors import InvalidInput
from modelyard.services.data.checkout import CheckoutReport
from modelyard.services.data.diff import DiffReport
from modelyard.services.data.status import StatusReport
from modelyard.services.data.transfer import TransferReport
from modelyard.services.data.workspace import Remote
from modelyard.storage.content.leftovers import Leftover


def _all_records(base: type[Record] = Record) -> list[type[Record]]:
    found: list[type[Record]] = []
    for sub in base.__subclasses__():
        found += [sub, *_all_records(sub)]
    return found


# ``dataclass(slots=True)`` replaces the class it decorates: keep the one the module exports
RECORDS = sorted({cls for cls in _all_records()
                  if getattr(sys.modules[cls.__module__], cls.__qualname__, None) is cls},
                 key=lambda cls: cls.__name__)

# -- strategies built from the dataclass fields --------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
ZONES = st.just(UTC) | st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60))
TIMES = st.datetimes(timezones=ZONES)
SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    Any: JSON, str: st.text(), int: st.integers(), bool: st.booleans(), datetime: TIMES,
    float: st.floats(allow_nan=False, allow_infinity=False), type(None): st.none(),
}


def strategy(tp: Any) -> st.SearchStrategy[Any]:
    """Values of the type hint ``tp``; a dataclass is built from its own fields."""
    if tp in SCALARS:
        return SCALARS[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return st.one_of(*(strategy(arg) for arg in args))
    if origin is Literal:
        return st.sampled_from(args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if origin is list:
        return st.lists(strategy(args[0]), max_size=3)
    if origin is tuple:
        return st.lists(strategy(args[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(strategy(args[0]), strategy(args[1]), max_size=3)
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        return st.builds(tp, **{f.name: strategy(hints[f.name])
                                for f in dataclasses.fields(tp) if f.init})
    raise TypeError(f"no strategy for {tp!r}")


@pytest.mark.parametrize("record_type", RECORDS, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_is_exact(record_type: type[Record], data: st.DataObject) -> None:
    record = data.draw(strategy(record_type))
    encoded = encode(record)
    over_the_wire = json.loads(json.dumps(encoded))
    back = decode(record_type, over_the_wire)
    assert back == record
    assert encode(back) == encoded  # offsets and computed fields survive too


def test_every_record_type_is_covered() -> None:
    """A record added without a literal example below fails here, not silently."""
    assert {type(record) for record, _ in EXAMPLES} == set(RECORDS)


# -- encode gives what the hand-written to_dict gave ------------------------------------
T1 = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
T1_TEXT = "2026-03-01T12:30:00+00:00"
T2 = datetime(2026, 3, 2, 9, 15, 7, 250000, tzinfo=timezone(timedelta(hours=2)))
T2_TEXT = "2026-03-02T09:15:07.250000+02:00"
DIGEST = "blake3:" + "ab" * 32
RUN_ID = "0123456789abcdef" * 2
EVENT = AuditEvent(7, T1, "ana", "version.transition", "fraud", 2, {"stage": "staging"},
                   {"stage": "production"}, "ship it", "p" * 64, "h" * 64, via="root")
EVENT_DICT = {
    "seq": 7, "at": T1_TEXT, "actor": "ana", "action": "version.transition", "model": "fraud",
    "version": 2, "before": {"stage": "staging"}, "after": {"stage": "production"},
    "comment": "ship it", "prev_hash": "p" * 64, "hash": "h" * 64, "via": "root",
}
ARTIFACT = RunArtifact("model", DIGEST, "dir", "", 2048, 3, "sklearn")
ARTIFACT_DICT = {"path": "model", "digest": DIGEST, "kind": "dir", "artifact_name": "",
                 "size": 2048, "file_count": 3, "flavor": "sklearn"}
GATE = GateResult("metrics.auc >= 0.9", True, {"metrics.auc": 0.93})
GATE_DICT = {"gate": "metrics.auc >= 0.9", "passed": True, "values": {"metrics.auc": 0.93}}
DECISION = DecisionRecord("bo", "approve", "fine", T2)
DECISION_DICT = {"actor": "bo", "decision": "approve", "comment": "fine", "at": T2_TEXT}
DISAGREEMENT = Disagreement("version", "fraud", 2, "stage", "production", "staging")
DISAGREEMENT_DICT = {
    "kind": "version", "name": "fraud", "number": 2, "field": "stage", "state": "production",
    "log": "staging",
    "message": "model 'fraud' version 2: stage: state says 'production', log says 'staging'",
}
CHECK = CheckpointCheck(40, "c" * 64, False, "the log no longer extends it")
CHECK_DICT = {"seq": 40, "hash": "c" * 64, "ok": False, "reason": "the log no longer extends it"}

EXAMPLES: list[tuple[Record, dict[str, Any]]] = [
    (RegisteredModel("fraud", "finds fraud", {"team": "risk"}, "ana", T1, T2, 3, 2, 3,
                     {"champion": 2}),
     {"name": "fraud", "description": "finds fraud", "tags": {"team": "risk"},
      "created_by": "ana", "created_at": T1_TEXT, "updated_at": T2_TEXT, "latest_version": 3,
      "production_version": 2, "version_count": 3, "aliases": {"champion": 2}}),
    (ModelVersion("fraud", 2, DIGEST, "file", "model.pkl", 1024, 1, "production", ["champion"],
                  {"lr": 0.01, "depth": 8, "opt": "adam", "early": True}, {"auc": 0.93},
                  {"team": "risk"}, "second try",
                  {"run_id": RUN_ID, "datasets": [{"uri": "datasets:/iris/1"}]}, "ana", T1, T2),
     {"name": "fraud", "version": 2, "digest": DIGEST, "artifact_kind": "file",
      "artifact_name": "model.pkl", "size": 1024, "file_count": 1, "stage": "production",
      "aliases": ["champion"], "params": {"lr": 0.01, "depth": 8, "opt": "adam", "early": True},
      "metrics": {"auc": 0.93}, "tags": {"team": "risk"}, "description": "second try",
      "lineage": {"run_id": RUN_ID, "datasets": [{"uri": "datasets:/iris/1"}]},
      "created_by": "ana", "created_at": T1_TEXT, "updated_at": T2_TEXT,
      "uri": "models:/fraud/2"}),
    (EVENT, EVENT_DICT),
    (HistoryState("fraud", T2, 2, {1: "archived", 2: "production"}, {"champion": 2}, [3],
                  [EVENT]),
     {"name": "fraud", "at": T2_TEXT, "production": 2,
      "stages": {"1": "archived", "2": "production"}, "aliases": {"champion": 2},
      "deleted": [3], "events": [EVENT_DICT]}),
    (VerifyReport(5, [DIGEST], [], [], 1, 300, {DIGEST: ["models:/fraud/2"]}),
     {"checked": 5, "corrupt": [DIGEST], "missing": [], "repaired": [], "leftover_count": 1,
      "leftover_bytes": 300, "owners": {DIGEST: ["models:/fraud/2"]}, "ok": False}),
    (DatasetVersion("iris", 1, DIGEST, "dir", "", 4096, 2, "s3://b/iris", "flowers",
                    {"split": "train"}, "ana", T2),
     {"name": "iris", "version": 1, "digest": DIGEST, "kind": "dir", "artifact_name": "",
      "size": 4096, "file_count": 2, "source": "s3://b/iris", "description": "flowers",
      "tags": {"split": "train"}, "created_by": "ana", "created_at": T2_TEXT,
      "uri": "datasets:/iris/1"}),
    (Experiment("churn", "monthly", {"q": "3"}, "ana", T1, 4),
     {"name": "churn", "description": "monthly", "tags": {"q": "3"}, "created_by": "ana",
      "created_at": T1_TEXT, "run_count": 4}),
    (MetricPoint("loss", 0.25, 3, T2),
     {"key": "loss", "value": 0.25, "step": 3, "timestamp": T2_TEXT}),
    (ARTIFACT, ARTIFACT_DICT),
    (Run(RUN_ID, "churn", "first", "finished", "ana", T1, None, {"lr": 0.1}, {"auc": 0.8},
         {"k": "v"}, {"commit": "f00d", "dirty": False}, {"python": "3.11"},
         [{"uri": "datasets:/iris/1", "digest": DIGEST}], [ARTIFACT]),
     {"run_id": RUN_ID, "experiment": "churn", "name": "first", "status": "finished",
      "created_by": "ana", "start_time": T1_TEXT, "end_time": None, "params": {"lr": 0.1},
      "metrics": {"auc": 0.8}, "tags": {"k": "v"}, "git": {"commit": "f00d", "dirty": False},
      "environment": {"python": "3.11"},
      "datasets": [{"uri": "datasets:/iris/1", "digest": DIGEST}],
      "artifacts": [ARTIFACT_DICT], "git_commit": "f00d"}),
    (VersionDiff("fraud", 1, 2, DIGEST, DIGEST, {"added": {}, "removed": {}, "changed": {}},
                 {"added": {}, "removed": {},
                  "changed": {"auc": {"from": 0.9, "to": 0.93, "delta": 0.03}}},
                 {"added": [], "removed": [], "unchanged": [DIGEST]}, {}, {},
                 {"added": ["b.txt"], "removed": [], "modified": []}),
     {"name": "fraud", "from_version": 1, "to_version": 2, "from_digest": DIGEST,
      "to_digest": DIGEST, "params": {"added": {}, "removed": {}, "changed": {}},
      "metrics": {"added": {}, "removed": {},
                  "changed": {"auc": {"from": 0.9, "to": 0.93, "delta": 0.03}}},
      "datasets": {"added": [], "removed": [], "unchanged": [DIGEST]}, "code": {},
      "packages": {}, "files": {"added": ["b.txt"], "removed": [], "modified": []},
      "identical_content": True}),
    (Lineage("fraud", 2, DIGEST, "ana", T1, {"run_id": RUN_ID}, "churn", {"lr": 0.1},
             {"auc": 0.93}, [{"uri": "datasets:/iris/1"}], None, {"python": "3.11"},
             {"name": "fraud", "version": 1}, [{"name": "fraud", "version": 3}],
             {"flavor": "sklearn"}),
     {"name": "fraud", "version": 2, "digest": DIGEST, "created_by": "ana",
      "created_at": T1_TEXT, "run": {"run_id": RUN_ID}, "experiment": "churn",
      "params": {"lr": 0.1}, "metrics": {"auc": 0.93}, "datasets": [{"uri": "datasets:/iris/1"}],
      "git": None, "environment": {"python": "3.11"}, "parent": {"name": "fraud", "version": 1},
      "descendants": [{"name": "fraud", "version": 3}], "model": {"flavor": "sklearn"}}),
    (Pointer(DIGEST, "dir", 4096, 2),
     {"digest": DIGEST, "kind": "dir", "size": 4096, "file_count": 2}),
    (Policy("fraud", 2, 2, ("bo", "cy"), ("metrics.auc >= 0.9",), False, True, "ana", T1, "why"),
     {"name": "fraud", "policy_version": 2, "default": False, "approvals": 2,
      "reviewers": ["bo", "cy"], "gates": ["metrics.auc >= 0.9"], "allow_self_approval": False,
      "rollback_needs_approval": True, "created_by": "ana", "created_at": T1_TEXT,
      "comment": "why"}),
    (GATE, GATE_DICT),
    (DECISION, DECISION_DICT),
    (PromotionRequest(12, "fraud", 2, DIGEST, "promotion", 2, "applied", "ana", T1, "go", 1,
                      [GATE], [DECISION], "bo", T2, "approved"),
     {"id": 12, "name": "fraud", "version": 2, "digest": DIGEST, "kind": "promotion",
      "policy_version": 2, "status": "applied", "requested_by": "ana", "requested_at": T1_TEXT,
      "comment": "go", "production_version": 1, "gates": [GATE_DICT], "gates_passed": True,
      "approvals": ["bo"], "decisions": [DECISION_DICT], "closed_by": "bo",
      "closed_at": T2_TEXT, "close_reason": "approved"}),
    (ChainReport(9, 4, "event 4 was altered"),
     {"checked": 9, "bad_seq": 4, "reason": "event 4 was altered", "ok": False}),
    (DISAGREEMENT, DISAGREEMENT_DICT),
    (CHECK, CHECK_DICT),
    (AuditReport(9, None, "", (DISAGREEMENT,), CHECK),
     {"checked": 9, "bad_seq": None, "reason": "", "chain_ok": True, "ok": False,
      "disagreements": [DISAGREEMENT_DICT], "checkpoint": CHECK_DICT}),
    (CheckoutReport(["data/a.csv"], ["data/b"], 4, 1, {"reflink": 3, "copy": 1}),
     {"restored": ["data/a.csv"], "unchanged": ["data/b"], "files_written": 4,
      "files_removed": 1, "links": {"reflink": 3, "copy": 1}}),
    (DiffReport("HEAD~1", "HEAD", ["data/new.csv"], [], ["data/a.csv"]),
     {"old": "HEAD~1", "new": "HEAD", "added": ["data/new.csv"], "removed": [],
      "modified": ["data/a.csv"]}),
    (StatusReport(3, ["data/a.csv"], [], [], [], ["data/b"], "origin"),
     {"tracked": 3, "modified": ["data/a.csv"], "missing": [], "not_in_cache": [],
      "corrupted_in_cache": [], "not_pushed": ["data/b"], "remote": "origin", "clean": False}),
    (TransferReport("origin", 5, 10_000, 2, 6_000),
     {"remote": "origin", "transferred": 5, "bytes": 10_000, "bytes_sent": 6_000,
      "already_present": 2}),
    (Remote("origin", "s3://bucket/cache", {"profile": "ci", "anon": False}),
     {"name": "origin", "url": "s3://bucket/cache", "options": {"profile": "ci", "anon": False}}),
    (Leftover("ab/tmp-1", 512, 4000.5, None),
     {"path": "ab/tmp-1", "size": 512, "age_seconds": 4000.5, "upload_id": None}),
    (GarbageReport([DIGEST], 512, 40, 2, True),
     {"removed": [DIGEST], "removed_bytes": 512, "kept": 40, "young": 2, "dry_run": True}),
    (User("vic", Role.VIEWER, T1, "ana", None),
     {"name": "vic", "role": "viewer", "created_at": T1_TEXT, "created_by": "ana",
      "disabled_at": None, "disabled": False}),
    (Token("0123456789ab", "vic", "ci", TokenStatus.REVOKED, T1, "ana", None, T2, None),
     {"id": "0123456789ab", "user": "vic", "name": "ci", "status": "revoked",
      "created_at": T1_TEXT, "created_by": "ana", "expires_at": None, "revoked_at": T2_TEXT,
      "last_used_at": None}),
    (Webhook(3, "https://ci.example.com/hook", ["version.transition"], "fraud",
             WebhookStatus.PAUSED, "failing for 1 h: HTTP 503", "ana", T1, 2, T2),
     {"id": 3, "url": "https://ci.example.com/hook", "events": ["version.transition"],
      "model": "fraud", "status": "paused", "status_reason": "failing for 1 h: HTTP 503",
      "created_by": "ana", "created_at": T1_TEXT, "pending": 2,
      "status_changed_at": T2_TEXT}),
    (Delivery(9, 3, "evt-17", "version.transition", 17, 4, DeliveryTrigger.WORKER, True, 200,
              12, "ok", "", T2),
     {"id": 9, "webhook_id": 3, "event_id": "evt-17", "event_type": "version.transition",
      "seq": 17, "attempt": 4, "trigger": "worker", "ok": True, "status_code": 200,
      "latency_ms": 12, "response": "ok", "error": "", "at": T2_TEXT}),
]


@pytest.mark.parametrize(("record", "expected"), EXAMPLES,
                         ids=[type(record).__name__ for record, _ in EXAMPLES])
def test_encode_matches_the_former_to_dict(record: Record, expected: dict[str, Any]) -> None:
    assert encode(record) == expected
    assert record.to_dict() == expected
    assert decode(type(record), expected) == record


def test_lists_and_pages_encode_and_decode() -> None:
    versions = [record for record, _ in EXAMPLES if isinstance(record, ModelVersion)] * 2
    expected = [versions[0].to_dict()] * 2
    assert encode(versions) == expected
    assert encode(tuple(versions)) == expected
    assert decode(list[ModelVersion], expected) == versions
    page = Page(versions, next_page_token="abc")
    assert encode(page) == {"items": expected, "next_page_token": "abc"}
    back = decode(Page[ModelVersion], encode(page))
    assert isinstance(back, Page)
    assert back == versions and back.next_page_token == "abc"
    assert decode(Page[ModelVersion], {"items": []}).next_page_token is None
    mixed = [EVENT, GATE]
    assert encode(mixed) == [EVENT_DICT, GATE_DICT]
    run = next(record for record, _ in EXAMPLES if isinstance(record, Run))
    pair = encode((run, ARTIFACT))  # what reg.run_artifact returns
    assert pair == [run.to_dict(), ARTIFACT_DICT]
    assert decode(tuple[Run, RunArtifact], pair) == (run, ARTIFACT)


def test_decoded_times_carry_standard_library_zones() -> None:
    back = decode(DecisionRecord, DECISION_DICT)
    assert back.at == T2
    assert type(back.at.tzinfo) is timezone
    assert decode(MetricPoint, {"key": "k", "value": 1, "step": 0,
                                "timestamp": T1_TEXT}).timestamp.tzinfo is UTC


def test_special_floats_encode_as_json_dumps_writes_them() -> None:
    point = MetricPoint("loss", float("inf"), 0, T1)
    assert json.dumps(encode(point)["value"]) == "Infinity"


@pytest.mark.parametrize(("data", "message"), [
    ({**EVENT_DICT, "seq": "seven"}, "invalid AuditEvent: seq: Input should be a valid integer"),
    ({**EVENT_DICT, "at": "yesterday"}, "invalid AuditEvent: at: Input should be a valid datetime"),
    ({k: v for k, v in EVENT_DICT.items() if k != "actor"},
     "invalid AuditEvent: actor: Field required"),
    ([EVENT_DICT], "invalid AuditEvent: value: Input should be"),
    ("not a record", "invalid AuditEvent: value: Input should be"),
])
def test_decode_refuses_malformed_data(data: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode(AuditEvent, data)
    assert str(caught.value).startswith(message)
    assert caught.value.details["errors"][0]["type"]


def test_decode_names_the_bad_item_of_a_list() -> None:
    bad = [EVENT_DICT, {**EVENT_DICT, "version": [2]}]
    with pytest.raises(InvalidInput, match=r": 1\.version: Input should be a valid integer"):
        decode(list[AuditEvent], bad)
    with pytest.raises(InvalidInput, match=r": items\.1\.version: "):
        decode(Page[AuditEvent], {"items": bad})


def test_importing_modelyard_does_not_import_pydantic() -> None:
    code = ("import sys, modelyard, modelyard.cli.main, modelyard.domain.entities; "
            "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('pydantic')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"
