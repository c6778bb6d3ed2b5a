"""Kubernetes' protobuf request bodies, decoded to the JSON shape of the object.

    b"k8s\\x00" + runtime.Unknown{typeMeta{apiVersion, kind}, raw, ...}
                          │ (apiVersion, kind) → message (schema.KINDS)
                          ▼
    raw ── protobuf runtime (descriptors built from schema.MESSAGES) ── JSON dict

Why the `protobuf` runtime rather than a hand-written wire parser: the table of
field numbers is needed either way, and the runtime (upb, in C) brings robust
handling of malformed input (truncated varints, lengths past the end, wrong
wire types, depth limits), map entries and packed/unpacked repeated fields
for free, and it can also encode should corral ever answer in protobuf.
What Kubernetes' JSON does differently from protobuf (Time, Quantity,
IntOrString, inlined structs, omitempty) is done here, in to_json.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from corral.api.errors import BadRequest, UnsupportedMediaType
from corral.api.protobuf.descriptors import SCALARS, Field, MessageTable
from corral.api.protobuf.schema import KINDS, MESSAGES
from corral.objects import rfc3339

MAGIC = b"k8s\x00"
_PACKAGE = "corral.k8s"
# Apimachinery's own messages, and the envelope.
_BUILTIN: dict[str, str] = {
    "Time": "seconds=1:int64 nanos=2:int32",
    "Quantity": "string=1",
    "IntOrString": "type=1:int64 intVal=2:int32 strVal=3",
    "TypeMeta": "apiVersion=1 kind=2",
    "Unknown": "typeMeta=1:TypeMeta raw=2:bytes contentEncoding=3 contentType=4",
}


_TABLE = MessageTable(_PACKAGE, {**_BUILTIN, **MESSAGES})


def _schema_fields(name: str) -> dict[int, Field]:
    return _TABLE.fields(name)


def _message_class(name: str) -> type[Message]:
    return _TABLE.message_class(name)


def _parse(name: str, data: bytes) -> Any:
    """A dynamic message of the schema (typed Any: its fields exist only at run time)."""
    message = _message_class(name)()
    try:
        message.ParseFromString(data)
    except DecodeError as err:
        raise BadRequest(f"the protobuf body could not be decoded as {name}: {err}") from None
    return message


def decode(body: bytes) -> dict[str, Any]:
    """The object a `application/vnd.kubernetes.protobuf` body carries, as JSON."""
    if not body.startswith(MAGIC):
        raise BadRequest('a protobuf body must start with the magic bytes "k8s\\x00" '
                         "(Kubernetes' runtime.Unknown envelope)")
    envelope = _parse("Unknown", body[len(MAGIC):])
    api_version = envelope.typeMeta.apiVersion
    kind = envelope.typeMeta.kind
    if envelope.contentEncoding:
        raise UnsupportedMediaType(f"protobuf content encoding "
                                   f"{envelope.contentEncoding!r} is not supported")
    name = "DeleteOptions" if kind == "DeleteOptions" else KINDS.get((api_version, kind))
    if name is None:
        raise UnsupportedMediaType(
            f"corral cannot decode a protobuf body of kind {kind or '(none)'} "
            f"({api_version or 'no apiVersion'}); it decodes "
            f"{', '.join(sorted(k for _, k in KINDS))} and DeleteOptions. "
            "Send this object as application/json instead.")
    obj = to_json(_parse(name, envelope.raw), name, kind)
    return {"apiVersion": api_version, "kind": kind, **obj} if api_version else \
        {"kind": kind, **obj}


def to_json(message: Any, name: str, path: str) -> dict[str, Any]:
    """A decoded message as Kubernetes' JSON encoder would write it."""
    _refuse_unknown(message, name, path)
    fields = _schema_fields(name)
    out: dict[str, Any] = {}
    for descriptor, value in message.ListFields():
        f = fields[descriptor.number]
        where = f"{path}.{f.name}"
        if f.type == "-":
            continue
        if f.map:
            converted: Any = {k: _value(f, v, f"{where}[{k}]") for k, v in value.items()}
        elif f.repeated:
            converted = [_value(f, v, f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            converted = _value(f, value, where)
            if converted is None or (converted in ("", 0, False) and not f.keep_zero
                                     and not isinstance(converted, dict)):
                continue
        if f.inline:
            out.update(converted)
        else:
            out[f.name] = converted
    return out


def _value(f: Field, value: Any, path: str) -> Any:
    if f.type == "bytes":
        return base64.b64encode(value).decode()
    if f.type in SCALARS:
        return value
    if f.type == "Time":
        if not value.ListFields():
            return None  # Kubernetes encodes the zero time as an empty message
        return rfc3339(datetime.fromtimestamp(value.seconds, UTC))
    if f.type == "Quantity":
        return value.string
    if f.type == "IntOrString":
        return value.strVal if value.type == 1 else value.intVal
    return to_json(value, f.type, path)


def _refuse_unknown(message: Message, name: str, path: str) -> None:
    unknown = UnknownFieldSet(message)
    if len(unknown):
        raise UnsupportedMediaType(
            f"corral does not decode field {unknown[0].field_number} of {name} (at {path}) "
            f"in protobuf bodies; send this object as application/json instead")
