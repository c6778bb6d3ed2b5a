"""Request bodies: JSON, YAML or Kubernetes protobuf in, a dict out; anything
else a clear 415.

Every body is bounded before it is believed:

    Content-Length over the limit      → 413 before a byte is read
    chunked body passing the limit     → 413, reading stops there
    YAML expanding past the limit      → 413 while it is copied out (alias bombs:
                                          a 400-byte document can name a 100 MB tree)
    nesting deeper than MAX_DEPTH      → 400 (the JSON encoder stops at 254 levels)
    YAML-only values (non-string keys,
    dates, binary, sets, .inf/.nan)    → strings where sigs.k8s.io/yaml makes strings,
                                          400 where JSON has no such value
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import math
from typing import Any

import orjson
import yaml
from starlette.requests import Request

from corral.api.errors import BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from corral.api.protobuf import decode_protobuf

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAX_BODY_BYTES = 3 * 1024 * 1024  # Kubernetes' default request size limit
# Deep enough for any Kubernetes object (a pod template's affinity terms are ~12
# levels), far below the 254 levels orjson can encode inside a List or watch event.
MAX_DEPTH = 100
BODY_TIMEOUT = 60.0  # seconds to receive a whole body (kube-apiserver's request timeout)
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml")

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # libyaml not compiled in
    _Loader = yaml.SafeLoader


def too_large(limit: int = MAX_BODY_BYTES) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(f"Request entity too large: limit is {limit}")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass ``limit``:
    by its Content-Length before reading, else while a chunked body streams in."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise BadRequest(f"invalid Content-Length {declared!r}") from None
        if length > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT):  # a body dripping in holds a seat
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(f"the request body did not arrive within {BODY_TIMEOUT:.0f}s") from None
    return b"".join(chunks)


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";")[0].strip().lower()


def parse_document(body: bytes, content_type: str | None) -> Any:
    """Decode one JSON or YAML document; raises BadRequest / UnsupportedMediaType /
    RequestEntityTooLarge."""
    mtype = media_type(content_type)
    if len(body) > MAX_BODY_BYTES:
        raise too_large()
    if not body.strip():
        raise BadRequest("the request body is empty; expected a JSON or YAML object")
    if mtype == PROTOBUF:
        return decode_protobuf(body)
    if mtype in _YAML_TYPES:
        return load_yaml(body)
    if mtype.endswith("json") or mtype == "*/*":
        return load_json(body)
    raise UnsupportedMediaType(
        f'unsupported media type "{mtype}": send application/json, application/yaml or '
        f"{PROTOBUF}"
    )


def load_json(body: bytes, what: str = "the request body") -> Any:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"{what} is not valid JSON: {e}") from None
    check_depth(doc)
    return doc


def load_yaml(body: bytes) -> Any:
    """One YAML document as JSON values, its expanded size bounded."""
    try:
        doc = yaml.load(body, Loader=_Loader)
    except yaml.YAMLError as e:
        raise BadRequest(f"error converting YAML to JSON: {e}") from None
    except RecursionError:
        raise BadRequest(f"error converting YAML to JSON: nested deeper than {MAX_DEPTH} "
                         "levels") from None
    return _JsonCopy(MAX_BODY_BYTES).copy(doc, 0)


def parse_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    doc = parse_document(body, content_type)
    if not isinstance(doc, dict):
        raise BadRequest(f"the request body must be an object, got {type(doc).__name__}")
    return doc


def check_depth(doc: Any) -> None:
    """BadRequest when ``doc`` nests deeper than MAX_DEPTH. Recursive, but never
    past MAX_DEPTH calls (far within the interpreter's stack), and only into
    containers: ~4× faster than the explicit stack it replaced, on every body."""
    if type(doc) is dict or type(doc) is list:
        _check_under(doc, 0)


def _check_under(value: dict[str, Any] | list[Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _too_deep()
    for item in value.values() if type(value) is dict else value:
        if type(item) is dict or type(item) is list:
            _check_under(item, depth + 1)


def _too_deep() -> BadRequest:
    return BadRequest(f"the request body nests deeper than {MAX_DEPTH} levels")


class _JsonCopy:
    """Copies a YAML result into plain JSON values, charging every value's JSON
    size to a budget: aliases are copied where they are used, so the budget
    bounds what the document expands to (and a self-referencing alias ends it)."""

    def __init__(self, budget: int) -> None:
        self.left = budget

    def charge(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise RequestEntityTooLarge(
                f"Request entity too large: the YAML document expands beyond "
                f"{MAX_BODY_BYTES} bytes (aliases)")

    def copy(self, value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            self.charge(2)
            return {self.key(k): self.copy(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            self.charge(2)
            return [self.copy(v, depth + 1) for v in value]
        return self.scalar(value)

    def key(self, key: Any) -> str:
        text = key if isinstance(key, str) else self.text_of(key)
        self.charge(len(text) + 3)
        return text

    def scalar(self, value: Any) -> Any:
        if isinstance(value, str):
            self.charge(len(value) + 2)
            return value
        if value is None or isinstance(value, bool):
            self.charge(5)
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(f"error converting YAML to JSON: {value} is not a JSON number")
        if isinstance(value, (int, float)):
            self.charge(24)
            return value
        text = self.text_of(value)
        self.charge(len(text) + 2)
        return text

    @staticmethod
    def text_of(value: Any) -> str:
        """How sigs.k8s.io/yaml spells what JSON has no type for."""
        if isinstance(value, datetime.datetime):
            return value.isoformat().replace("+00:00", "Z")
        if isinstance(value, datetime.date):
            return value.isoformat()
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, (int, float, bool)) or value is None:
            return orjson.dumps(value).decode()
        raise BadRequest(f"error converting YAML to JSON: unsupported value of type "
                         f"{type(value).__name__}")
