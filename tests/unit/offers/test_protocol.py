"""Mesos scheduler calls checked as Mesos checks them; events and RecordIO framing;
Framework validation."""

from __future__ import annotations

import json

import pytest

from corral.api.field_errors import FieldErrors
from corral.api.framework_validation import role_problems, validate_framework
from corral.api.kinds.framework import Framework
from corral.offers.frameworks import framework_spec
from corral.offers.protocol import Call, CallError, b64, event, new_uuid, recordio


def parse(body: object) -> Call:
    return Call.parse(json.dumps(body).encode())


def test_subscribe_takes_the_id_of_its_framework_info() -> None:
    call = parse({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "u", "name": "n", "id": {"value": "abc"}}}})
    assert call.framework_id == "abc"
    with pytest.raises(CallError, match="differs"):
        parse({"type": "SUBSCRIBE", "framework_id": {"value": "x"},
               "subscribe": {"framework_info": {"user": "u", "name": "n",
                                                "id": {"value": "abc"}}}})


@pytest.mark.parametrize(("body", "message"), [
    ({"type": "ACCEPT", "framework_id": {"value": "f"}}, "'accept' to be present"),
    ({"type": "ACCEPT", "framework_id": {"value": "f"}, "accept": {"offer_ids": []}},
     "non-empty"),
    ({"type": "DECLINE", "framework_id": {"value": "f"},
      "decline": {"offer_ids": [{"value": "o"}], "filters": {"refuse_seconds": "5"}}},
     "refuse_seconds"),
    ({"type": "KILL", "framework_id": {"value": "f"}, "kill": {"task_id": {}}},
     "kill.task_id"),
    ({"type": "REVIVE"}, "'framework_id' to be present"),
    ({"type": "REVIVE", "framework_id": {"value": "f"}, "revive": {"roles": "a"}}, "roles"),
    ({"type": "ACKNOWLEDGE", "framework_id": {"value": "f"}, "acknowledge": {
        "task_id": {"value": "t"}, "agent_id": {"value": "a"}, "uuid": b64(b"short")}},
     "not a valid UUID"),
    ({"type": "RECONCILE", "framework_id": {"value": "f"}, "reconcile": {"tasks": [{}]}},
     "reconcile.tasks\\[0\\].task_id"),
    ({"type": "MESSAGE", "framework_id": {"value": "f"}, "message": {
        "agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "!!"}}, "base64"),
    ({"type": "SHOUT", "framework_id": {"value": "f"}}, "'type'"),
    ([], "JSON object"),
])
def test_malformed_calls_are_refused(body: object, message: str) -> None:
    with pytest.raises(CallError, match=message):
        parse(body)


def test_well_formed_calls() -> None:
    ack = parse({"type": "ACKNOWLEDGE", "framework_id": {"value": "f"}, "acknowledge": {
        "task_id": {"value": "t"}, "agent_id": {"value": "a"}, "uuid": b64(new_uuid())}})
    assert ack.body["task_id"] == {"value": "t"}
    revive = parse({"type": "REVIVE", "framework_id": {"value": "f"}})
    assert revive.roles() is None
    decline = parse({"type": "DECLINE", "framework_id": {"value": "f"},
                     "decline": {"offer_ids": [{"value": "o1"}, {"value": "o2"}]}})
    assert decline.offer_ids() == ["o1", "o2"]


def test_events_nest_as_scheduler_proto_and_frame_as_recordio() -> None:
    evt = event("OFFERS", offers=[{"id": {"value": "o"}}])
    assert evt == {"type": "OFFERS", "offers": {"offers": [{"id": {"value": "o"}}]}}
    assert event("HEARTBEAT") == {"type": "HEARTBEAT"}
    record = recordio({"type": "HEARTBEAT", "x": "é"})
    head, _, data = record.partition(b"\n")
    assert int(head) == len(data) and json.loads(data)["x"] == "é"


def test_framework_info_becomes_a_valid_spec() -> None:
    spec = framework_spec({"name": "n", "user": "u", "role": "legacy",
                           "capabilities": [{"type": "PARTITION_AWARE"}],
                           "failover_timeout": 7.5, "webui_url": "http://x"})
    assert spec == {"name": "n", "user": "u", "roles": ["legacy"], "failoverTimeout": 7.5,
                    "capabilities": ["PARTITION_AWARE"], "webuiUrl": "http://x"}
    errs = FieldErrors()
    validate_framework(Framework.model_validate({"spec": spec}), None, errs)
    assert errs == []


@pytest.mark.parametrize(("role", "ok"), [("*", True), ("a/b", True), ("prod", True),
                                          ("", False), ("-x", False), ("a//b", False),
                                          ("a/../b", False), ("sp ace", False), (".", False)])
def test_role_names(role: str, ok: bool) -> None:
    assert (not role_problems(role)) is ok


def test_invalid_framework_fields_are_named() -> None:
    fw = Framework.model_validate({"spec": {"roles": ["a", "a"], "failoverTimeout": -1,
                                            "capabilities": ["NOPE"]}})
    errs = FieldErrors()
    validate_framework(fw, None, errs)
    assert {c.field for c in errs} == {"spec.name", "spec.roles[1]", "spec.failoverTimeout",
                                       "spec.capabilities[0]"}
