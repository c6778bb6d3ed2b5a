"""JSON on the client's wire, read and written by orjson: several times faster
than the standard json, and every agent's status write, Lease renewal and watch
event goes through here. The API server reads and writes it with orjson too
(corral/api/body.py); json stays the fallback for what orjson refuses, so no
caller sees a difference."""

from __future__ import annotations

import json
from typing import Any

import orjson


def encode_json(body: Any) -> bytes:
    """``body`` as JSON; json's rendering for what orjson refuses (keys that are
    not strings, integers past 64 bits)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body).encode()


def decode_json(data: bytes | str) -> Any:
    """JSON text as values; json for what orjson refuses (NaN, integers past 64
    bits), which raises ValueError for what is no JSON at all."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
