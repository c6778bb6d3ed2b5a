"""Protobuf message classes built at run time from a table of fields, so corral
needs no generated code (and no protoc) for the messages it reads or writes.

    MessageTable("corral.k8s", {"Pod": "metadata=1:ObjectMeta spec=2:PodSpec ..."})
        .message_class("Pod")   → a upb message class
        .fields("Pod")          → {number: Field}

One line per message: ``name=NUMBER[:TYPE][!]`` per field, TYPE a scalar
(string by default; int32, int64, bool, bytes, or "-": bytes not decoded), a
message of the table, ``[T]`` repeated or ``{T}`` a map from string to T; ``!``
marks a zero value worth keeping and a leading ``^`` a struct JSON inlines
(meanings codec.py gives them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = {"string": FDP.TYPE_STRING, "int32": FDP.TYPE_INT32, "int64": FDP.TYPE_INT64,
           "bool": FDP.TYPE_BOOL, "bytes": FDP.TYPE_BYTES, "-": FDP.TYPE_BYTES}


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
    """One table line ("name=NUMBER[:TYPE][!] ...") as Fields."""
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


class MessageTable:
    def __init__(self, package: str, specs: dict[str, str]) -> None:
        self.package = package
        self._fields = {name: {f.number: f for f in parse_fields(spec)}
                        for name, spec in specs.items()}

    def fields(self, name: str) -> dict[int, Field]:
        return self._fields[name]

    @functools.cached_property
    def pool(self) -> descriptor_pool.DescriptorPool:
        """Descriptors built from the table, once (proto2: every field has presence)."""
        file = descriptor_pb2.FileDescriptorProto(
            name=f"{self.package.replace('.', '/')}.proto", package=self.package,
            syntax="proto2")
        for name, fields in self._fields.items():
            message = file.message_type.add(name=name)
            for f in fields.values():
                self._add_field(message, f)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(file)
        return pool

    def message_class(self, name: str) -> type[Message]:
        descriptor: Descriptor = self.pool.FindMessageTypeByName(f"{self.package}.{name}")
        cls: type[Message] = message_factory.GetMessageClass(descriptor)
        return cls

    def _add_field(self, message: descriptor_pb2.DescriptorProto, f: Field) -> None:
        if f.map:
            entry = message.nested_type.add(name=f"{f.name[:1].upper()}{f.name[1:]}Entry")
            entry.options.map_entry = True
            self._add_field(entry, Field("key", 1, "string"))
            self._add_field(entry, Field("value", 2, f.type))
            field = message.field.add(name=f.name, number=f.number, label=FDP.LABEL_REPEATED,
                                      type=FDP.TYPE_MESSAGE)
            field.type_name = f".{self.package}.{message.name}.{entry.name}"
            return
        label = FDP.LABEL_REPEATED if f.repeated else FDP.LABEL_OPTIONAL
        field = message.field.add(name=f.name, number=f.number, label=label)
        if f.type in SCALARS:
            field.type = SCALARS[f.type]
        else:
            field.type = FDP.TYPE_MESSAGE
            field.type_name = f".{self.package}.{f.type}"
