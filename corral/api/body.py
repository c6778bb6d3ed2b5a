"""Request bodies: JSON, YAML or Kubernetes protobuf in, a dict out; anything
else a clear 415."""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from corral.api.errors import BadRequest, UnsupportedMediaType
from corral.api.protobuf import decode_protobuf

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAX_BODY_BYTES = 3 * 1024 * 1024  # Kubernetes' default request size limit
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml")

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # libyaml not compiled in
    _Loader = yaml.SafeLoader


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";")[0].strip().lower()


def parse_document(body: bytes, content_type: str | None) -> Any:
    """Decode one JSON or YAML document; raises BadRequest / UnsupportedMediaType."""
    mtype = media_type(content_type)
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"request entity too large: limit is {MAX_BODY_BYTES} bytes")
    if not body.strip():
        raise BadRequest("the request body is empty; expected a JSON or YAML object")
    if mtype == PROTOBUF:
        return decode_protobuf(body)
    if mtype in _YAML_TYPES:
        try:
            return yaml.load(body, Loader=_Loader)
        except yaml.YAMLError as e:
            raise BadRequest(f"error converting YAML to JSON: {e}") from None
    if mtype.endswith("json") or mtype == "*/*":
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"the request body is not valid JSON: {e}") from None
    raise UnsupportedMediaType(
        f'unsupported media type "{mtype}": send application/json, application/yaml or '
        f"{PROTOBUF}"
    )


def parse_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    doc = parse_document(body, content_type)
    if not isinstance(doc, dict):
        raise BadRequest(f"the request body must be an object, got {type(doc).__name__}")
    return doc
