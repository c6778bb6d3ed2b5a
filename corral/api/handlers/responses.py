"""JSON responses, Status bodies, and the Table/List shapes of results."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from corral.api import tables
from corral.api.conversion import conversion_for, to_served
from corral.api.errors import APIError
from corral.api.resources import Resource


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def status_response(err: APIError) -> JSONResponse:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
    return JSONResponse(err.to_status(), status_code=err.code, headers=headers)


def warning_headers(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    # One header per warning is the norm; Starlette takes one value per key, and
    # the RFC 7234 list form (comma-separated) is what clients split on.
    escaped = [w.replace("\\", "\\\\").replace('"', '\\"') for w in warnings]
    return {"Warning": ", ".join(f'299 - "{w}"' for w in escaped)}


def wants_table(request: Request) -> bool:
    return tables.wants_table(request.headers.get("accept", ""))


def include_object(request: Request) -> str:
    value = request.query_params.get("includeObject", "Metadata")
    return value if value in ("None", "Metadata", "Object") else "Metadata"


def render_one(request: Request, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    if wants_table(request):
        table = tables.to_table(res, [obj], include_object=include_object(request))
        table.setdefault("metadata", {})["resourceVersion"] = obj["metadata"].get(
            "resourceVersion", "")
        return table
    return to_served(res, obj)


def render_list(request: Request, res: Resource, items: list[dict[str, Any]], revision: int,
                continue_token: str) -> dict[str, Any]:
    list_meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if continue_token:
        list_meta["continue"] = continue_token
    if wants_table(request):
        table = tables.to_table(res, items, include_object=include_object(request))
        table["metadata"] = list_meta
        return table
    if conversion_for(res) is not None:  # a version served from another
        items = [to_served(res, item) for item in items]
    return {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": list_meta,
            "items": items}
