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
import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from corral.api.errors import BadRequest, UnsupportedMediaType
from corral.api.protobuf.schema import KINDS, MESSAGES
from corral.objects import rfc3339

MAGIC = b"k8s\x00"
_PACKAGE = "corral.k8s"
FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"string": FDP.TYPE_STRING, "int32": FDP.TYPE_INT32, "int64": FDP.TYPE_INT64,
            "bool": FDP.TYPE_BOOL, "bytes": FDP.TYPE_BYTES, "-": FDP.TYPE_BYTES}
# Apimachinery's own messages, and the envelope.
_BUILTIN: dict[str, str] = {
    "Time": "seconds=1:int64 nanos=2:int32",
    "Quantity": "string=1",
    "IntOrString": "type=1:int64 intVal=2:int32 strVal=3",
    "TypeMeta": "apiVersion=1 kind=2",
    "Unknown": "typeMeta=1:TypeMeta raw=2:bytes contentEncoding=3 contentType=4",
}


@dataclass(frozen=True)
class Field:
    name: str  # the JSON name
    number: int
    type: str  # scalar, "-" (skipped) or a message name
    repeated: bool = False
    map: bool = False
    keep_zero: bool = False
    inline: bool = False


def parse_fields(spec: str) -> list[Field]:
    """One schema line ("name=NUMBER[:TYPE][!] ...") as Fields."""
    fields = []
    for word in spec.split():
        name, _, rest = word.partition("=")
        number, _, type_ = rest.partition(":")
        keep = type_.endswith("!") or number.endswith("!")
        number, type_ = number.rstrip("!"), (type_.rstrip("!") or "string")
        repeated, is_map = type_.startswith("["), type_.startswith("{")
        fields.append(Field(name.lstrip("^"), int(number), type_.strip("[]{}"), repeated,
                            is_map, keep, name.startswith("^")))
    return fields


@functools.cache
def _schema() -> dict[str, dict[int, Field]]:
    return {name: {f.number: f for f in parse_fields(spec)}
            for name, spec in {**_BUILTIN, **MESSAGES}.items()}


def _add_field(message: descriptor_pb2.DescriptorProto, f: Field) -> None:
    if f.map:
        entry = message.nested_type.add(name=f"{f.name[:1].upper()}{f.name[1:]}Entry")
        entry.options.map_entry = True
        _add_field(entry, Field("key", 1, "string"))
        _add_field(entry, Field("value", 2, f.type))
        field = message.field.add(name=f.name, number=f.number, label=FDP.LABEL_REPEATED,
                                  type=FDP.TYPE_MESSAGE)
        field.type_name = f".{_PACKAGE}.{message.name}.{entry.name}"
        return
    label = FDP.LABEL_REPEATED if f.repeated else FDP.LABEL_OPTIONAL
    field = message.field.add(name=f.name, number=f.number, label=label)
    if f.type in _SCALARS:
        field.type = _SCALARS[f.type]
    else:
        field.type = FDP.TYPE_MESSAGE
        field.type_name = f".{_PACKAGE}.{f.type}"


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    """Descriptors built from the tables, once (proto2: every field has presence)."""
    file = descriptor_pb2.FileDescriptorProto(name="corral/k8s.proto", package=_PACKAGE,
                                              syntax="proto2")
    for name, fields in _schema().items():
        message = file.message_type.add(name=name)
        for f in fields.values():
            _add_field(message, f)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool


def _message_class(name: str) -> type[Message]:
    descriptor: Descriptor = _pool().FindMessageTypeByName(f"{_PACKAGE}.{name}")
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


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
    fields = _schema()[name]
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
    if f.type in _SCALARS:
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
