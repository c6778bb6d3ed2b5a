"""/openapi/v2: the Swagger 2.0 document, for clients that read it instead of v3
(`kubectl explain --output=plaintext-openapiv2`, kubectl before 1.29 validating).

    Accept: application/com.github.proto-openapi.spec.v2[@.]v1.0+protobuf
        → gnostic's openapi.v2.Document in protobuf: what client-go asks for
          and the only form it parses
    anything else → the same document in JSON

Built from the v3 group-version documents (openapi.py): their component schemas
become definitions ($refs rewritten), v3-only shapes are mapped to Swagger's
(an int-or-string anyOf becomes Kubernetes' "int-or-string" format), and the
x-kubernetes-* extensions kubectl looks kinds up by are kept. Paths are left
out: clients read the definitions.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
import yaml

from corral.api.openapi import openapi_v3_document
from corral.api.protobuf.descriptors import MessageTable
from corral.api.resources import CONVERTED, RESOURCES, group_versions

# What client-go asks for (the "@" form kube-openapi still accepts) and what
# kube-openapi answers with: Go's mime parser refuses an "@" in a Content-Type.
ASKED_PROTOBUF = ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                  "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_V3_REF = "#/components/schemas/"
_V2_REF = "#/definitions/"

# The fields of gnostic's OpenAPIv2.proto (google/gnostic openapiv2) corral writes.
GNOSTIC = MessageTable("openapi.v2", {
    "Document": "swagger=1 info=2:Info definitions=9:Definitions",
    "Info": "title=1 version=2",
    "Definitions": "additionalProperties=1:[NamedSchema]",
    "NamedSchema": "name=1 value=2:Schema",
    "Schema": """ref=1 format=2 title=3 description=4 required=19:[string]
        additionalProperties=21:AdditionalPropertiesItem type=22:TypeItem items=23:ItemsItem
        allOf=24:[Schema] properties=25:Properties vendorExtension=31:[NamedAny]""",
    "AdditionalPropertiesItem": "schema=1:Schema boolean=2:bool",
    "TypeItem": "value=1:[string]",
    "ItemsItem": "schema=1:[Schema]",
    "Properties": "additionalProperties=1:[NamedSchema]",
    "NamedAny": "name=1 value=2:Any",
    "Any": "yaml=2",
})


def wants_protobuf(accept: str) -> bool:
    return any(asked in accept for asked in ASKED_PROTOBUF)


@functools.cache
def openapi_v2_document() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for group, version in group_versions(RESOURCES + CONVERTED):
        doc = openapi_v3_document(group, version) or {}
        for name, schema in (doc.get("components") or {}).get("schemas", {}).items():
            definitions[name] = _to_v2(schema)
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": {}, "definitions": definitions}


@functools.cache
def openapi_v2_json() -> bytes:
    return orjson.dumps(openapi_v2_document())


@functools.cache
def openapi_v2_protobuf() -> bytes:
    doc = openapi_v2_document()
    message: Any = GNOSTIC.message_class("Document")()
    message.swagger = doc["swagger"]
    message.info.title, message.info.version = doc["info"]["title"], doc["info"]["version"]
    for name, schema in doc["definitions"].items():
        _fill(message.definitions.additionalProperties.add(name=name).value, schema)
    data: bytes = message.SerializeToString(deterministic=True)
    return data


def _to_v2(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_v2(n) for n in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list):
        types = {o.get("type") for o in options if isinstance(o, dict)} - {"null"}
        node = {k: v for k, v in node.items() if k != "anyOf"}
        if types == {"integer", "string"}:
            node.update({"type": "string", "format": "int-or-string"})
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        # v3 wraps a $ref with siblings in allOf; Kubernetes' v2 puts them side by side
        node = {**{k: v for k, v in node.items() if k != "allOf"}, "$ref": all_of[0]["$ref"]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = _V2_REF + value.removeprefix(_V3_REF)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: _to_v2(v) for k, v in value.items()}
        else:
            out[key] = _to_v2(value)
    return out


def _fill(message: Any, schema: dict[str, Any]) -> None:
    """One Swagger schema into a gnostic Schema message."""
    for key in ("format", "title", "description"):
        if isinstance(schema.get(key), str):
            setattr(message, key, schema[key])
    if "$ref" in schema:
        message.ref = schema["$ref"]
    if isinstance(schema.get("type"), str):
        message.type.value.append(schema["type"])
    message.required.extend(r for r in schema.get("required") or [] if isinstance(r, str))
    for name, prop in (schema.get("properties") or {}).items():
        _fill(message.properties.additionalProperties.add(name=name).value, prop)
    if isinstance(schema.get("items"), dict):
        _fill(message.items.schema.add(), schema["items"])
    for part in schema.get("allOf") or []:
        _fill(message.allOf.add(), part)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        _fill(message.additionalProperties.schema, extra)
    elif isinstance(extra, bool):
        message.additionalProperties.boolean = extra
    for key, value in schema.items():
        if key.startswith("x-"):
            named = message.vendorExtension.add(name=key)
            named.value.yaml = yaml.safe_dump(value, default_flow_style=False)
