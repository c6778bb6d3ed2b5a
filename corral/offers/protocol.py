"""The Mesos v1 scheduler API on the wire: calls in, events out, RecordIO framing.

Shapes follow Mesos' ``scheduler.proto`` in its JSON mapping (field names as in
the proto, enums as their names, ``bytes`` as base64). A call is checked here as
Mesos' ``validation::scheduler::call::validate`` does, so a malformed one is a
400 naming what is wrong before anything acts on it.

    Call.parse(body)      -> Call, or CallError (400)
    event(type, **body)   -> {"type": TYPE, "<type>": body}
    recordio(event)       -> b"<length>\\n<json>"
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from corral.objects import Obj

VERSION = "1.11.0"  # the Mesos release whose API this follows
HEARTBEAT_SECONDS = 15.0  # Mesos' default heartbeat interval

# Every Call.Type of Mesos 1.11; those corral acts on, the rest are accepted (202).
CALL_TYPES = ("SUBSCRIBE", "TEARDOWN", "ACCEPT", "DECLINE", "ACCEPT_INVERSE_OFFERS",
              "DECLINE_INVERSE_OFFERS", "REVIVE", "KILL", "SHUTDOWN", "ACKNOWLEDGE",
              "ACKNOWLEDGE_OPERATION_STATUS", "RECONCILE", "RECONCILE_OPERATIONS", "MESSAGE",
              "REQUEST", "SUPPRESS", "UPDATE_FRAMEWORK")
_CALL_TYPES = frozenset(CALL_TYPES)
ACTED_ON = ("SUBSCRIBE", "TEARDOWN", "ACCEPT", "DECLINE", "REVIVE", "KILL", "ACKNOWLEDGE",
            "RECONCILE", "MESSAGE", "SUPPRESS")
# The sub-message each call type must carry (Mesos refuses the call without it).
BODY_OF = {"SUBSCRIBE": "subscribe", "ACCEPT": "accept", "DECLINE": "decline", "KILL": "kill",
           "ACKNOWLEDGE": "acknowledge", "RECONCILE": "reconcile", "MESSAGE": "message",
           "SHUTDOWN": "shutdown", "REQUEST": "request", "UPDATE_FRAMEWORK": "update_framework",
           "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
           "DECLINE_INVERSE_OFFERS": "decline_inverse_offers"}
TERMINAL_STATES = frozenset({"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR",
                             "TASK_LOST", "TASK_DROPPED", "TASK_GONE",
                             "TASK_GONE_BY_OPERATOR"})


class CallError(ValueError):
    """A call Mesos would refuse as malformed: answered 400 with this message;
    sending it again fails the same way."""


def _id(value: Any, where: str) -> str:
    """An ``{"value": "..."}`` id (FrameworkID, OfferID, TaskID, AgentID)."""
    if not isinstance(value, dict) or not isinstance(value.get("value"), str) \
            or not value["value"]:
        raise CallError(f"Expecting '{where}' to be an object with a non-empty 'value'")
    return str(value["value"])


def _object(value: Any, where: str) -> Obj:
    if not isinstance(value, dict):
        raise CallError(f"Expecting '{where}' to be present and an object")
    return value


def _ids(values: Any, where: str) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise CallError(f"Expecting '{where}' to be a list")
    return [_id(v, f"{where}[{i}]") for i, v in enumerate(values)]


def _roles(body: Obj, where: str) -> list[str] | None:
    """The ``roles`` of REVIVE/SUPPRESS (absent: all the framework's roles)."""
    roles = body.get("roles")
    if roles is None:
        return None
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise CallError(f"Expecting '{where}.roles' to be a list of strings")
    return list(roles)


def refuse_seconds(filters: Any) -> float:
    """Filters.refuse_seconds (Mesos' default: 5 s)."""
    if filters is None:
        return 5.0
    value = _object(filters, "filters").get("refuse_seconds", 5.0)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CallError("Expecting 'filters.refuse_seconds' to be a number")
    return float(value)


def decode_uuid(text: Any, where: str) -> bytes:
    """A status update uuid: 16 bytes, base64 in JSON."""
    try:  # (base64.b64decode(..., validate=True), without its Python layer)
        raw = binascii.a2b_base64(str(text).encode("ascii"), strict_mode=True)
    except (ValueError, TypeError):
        raise CallError(f"'{where}' is not valid base64") from None
    if len(raw) != 16:
        raise CallError(f"'{where}' is not a valid UUID")
    return raw


@dataclass
class Call:
    """A scheduler::Call, checked. ``body`` is its sub-message (``{}`` if none)."""

    type: str
    framework_id: str  # "" only on a first SUBSCRIBE
    body: Obj = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: bytes) -> Call:
        try:
            data = orjson.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise CallError(f"Failed to parse body into Call: {err}") from None
        if not isinstance(data, dict):
            raise CallError("Failed to parse body into Call: expected a JSON object")
        kind = data.get("type")
        if kind not in _CALL_TYPES:
            raise CallError(f"Failed to validate scheduler::Call: Expecting 'type' to be "
                            f"one of {', '.join(CALL_TYPES)}, got {kind!r}")
        framework_id = ""
        if data.get("framework_id") is not None:
            framework_id = _id(data["framework_id"], "framework_id")
        body_key = BODY_OF.get(kind)
        body: Obj = {}
        if kind in ("REVIVE", "SUPPRESS"):
            body = _object(data.get(kind.lower()) or {}, kind.lower())
        elif body_key is not None:
            if body_key not in data:
                raise CallError(f"Failed to validate scheduler::Call: Expecting "
                                f"'{body_key}' to be present")
            body = _object(data[body_key], body_key)
        call = cls(kind, framework_id, body)
        call._validate()
        return call

    def _validate(self) -> None:
        if self.type == "SUBSCRIBE":
            info = _object(self.body.get("framework_info"), "subscribe.framework_info")
            info_id = _id(info["id"], "framework_info.id") if info.get("id") else ""
            if self.framework_id and self.framework_id != info_id:
                raise CallError("Failed to validate scheduler::Call: 'framework_id' differs "
                                "from 'subscribe.framework_info.id'")
            self.framework_id = info_id
            return
        if not self.framework_id:
            raise CallError("Failed to validate scheduler::Call: Expecting 'framework_id' "
                            "to be present")
        check = _CHECKS.get(self.type)
        if check is not None:
            check(self)

    def _check_accept(self) -> None:
        if not _ids(self.body.get("offer_ids"), "accept.offer_ids"):
            raise CallError("Failed to validate scheduler::Call: Expecting "
                            "'accept.offer_ids' to be non-empty")
        ops = self.body.get("operations") or []
        if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
            raise CallError("Expecting 'accept.operations' to be a list of objects")
        refuse_seconds(self.body.get("filters"))

    def _check_decline(self) -> None:
        _ids(self.body.get("offer_ids"), "decline.offer_ids")
        refuse_seconds(self.body.get("filters"))

    def _check_kill(self) -> None:
        _id(self.body.get("task_id"), "kill.task_id")

    def _check_acknowledge(self) -> None:
        _id(self.body.get("task_id"), "acknowledge.task_id")
        _id(self.body.get("agent_id"), "acknowledge.agent_id")
        decode_uuid(self.body.get("uuid"), "acknowledge.uuid")

    def _check_reconcile(self) -> None:
        tasks = self.body.get("tasks") or []
        if not isinstance(tasks, list):
            raise CallError("Expecting 'reconcile.tasks' to be a list")
        for i, task in enumerate(tasks):
            _id(_object(task, f"reconcile.tasks[{i}]").get("task_id"),
                f"reconcile.tasks[{i}].task_id")

    def _check_message(self) -> None:
        _id(self.body.get("agent_id"), "message.agent_id")
        _id(self.body.get("executor_id"), "message.executor_id")
        try:
            base64.b64decode(str(self.body.get("data") or ""), validate=True)
        except ValueError:
            raise CallError("'message.data' is not valid base64") from None

    def _check_revive(self) -> None:
        _roles(self.body, "revive")

    def _check_suppress(self) -> None:
        _roles(self.body, "suppress")

    # -- accessors for the checked call ----------------------------------------------

    def offer_ids(self) -> list[str]:
        return _ids(self.body.get("offer_ids"), f"{self.type.lower()}.offer_ids")

    def roles(self) -> list[str] | None:
        return _roles(self.body, self.type.lower())

    def task_id(self) -> str:
        return _id(self.body.get("task_id"), "task_id")


# Call type → its own checks (ACKNOWLEDGE's above all: three a task).
_CHECKS: dict[str, Callable[[Call], None]] = {
    kind: check for kind in CALL_TYPES
    if (check := getattr(Call, f"_check_{kind.lower()}", None)) is not None}


def event(kind: str, **body: Any) -> Obj:
    """A scheduler::Event: ``{"type": KIND, "<kind>": body}`` (HEARTBEAT has none)."""
    out: Obj = {"type": kind}
    if body:
        out[kind.lower()] = body
    return out


def recordio(evt: Obj) -> bytes:
    """One RecordIO record: the JSON's length in bytes, a newline, the JSON."""
    try:
        data = orjson.dumps(evt)
    except TypeError:  # what orjson does not encode (an integer past 64 bits)
        data = json.dumps(evt, separators=(",", ":")).encode()
    return b"%d\n%b" % (len(data), data)


_RANDOM = bytearray()  # os.urandom's bytes not used yet (read 4 KiB at a time)


def new_uuid() -> bytes:
    """A random (version 4) UUID's 16 bytes, as uuid.uuid4().bytes: os.urandom's,
    but read for 256 at a time and without making the UUID object (every status
    update has one)."""
    if len(_RANDOM) < 16:
        _RANDOM.extend(os.urandom(4096))
    raw = _RANDOM[:16]
    del _RANDOM[:16]
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return bytes(raw)


def b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def mesos_id(value: str) -> Obj:
    return {"value": value}
