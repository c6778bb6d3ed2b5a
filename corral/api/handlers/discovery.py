"""Discovery, version and OpenAPI endpoints (the documents come from
corral.api.discovery and corral.api.openapi)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from corral.api import discovery, openapi, openapi_v2
from corral.api.errors import NotFound
from corral.api.handlers.responses import JSONResponse
from corral.api.resources import Resource, ServedTable


def is_discovery_path(path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    if parts in (["api"], ["apis"], ["api", "v1"]):
        return True
    return len(parts) in (2, 3) and parts[0] == "apis"


async def version(request: Request) -> Response:
    return JSONResponse(discovery.version_info())


async def serve_discovery(request: Request, served: ServedTable) -> Response:
    resources = served.discoverable()
    parts = [p for p in request.url.path.split("/") if p]
    accept = request.headers.get("accept", "")
    if parts in (["api"], ["apis"]):
        core = parts == ["api"]
        if discovery.wants_aggregated(accept):
            return Response(
                orjson.dumps(discovery.aggregated_discovery(core, resources)),
                media_type=discovery.AGGREGATED_DISCOVERY_CONTENT_TYPE,
            )
        return JSONResponse(discovery.api_versions() if core
                            else discovery.api_group_list(resources))
    if parts == ["api", "v1"]:
        doc = discovery.api_resource_list("", "v1", resources)
    elif len(parts) == 2:
        doc = _api_group(parts[1], resources)
    else:
        doc = discovery.api_resource_list(parts[1], parts[2], resources)
    if doc is None:
        raise NotFound(f"the server could not find the requested resource "
                       f"(path {request.url.path})")
    return JSONResponse(doc)


def _api_group(group: str, resources: tuple[Resource, ...]) -> dict[str, object] | None:
    for g in discovery.api_group_list(resources).get("groups", []):
        if g.get("name") == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


async def serve_openapi(request: Request, served: ServedTable) -> Response:
    resources = served.all()
    parts = [p for p in request.url.path.split("/") if p]
    if parts == ["openapi", "v2"]:
        if openapi_v2.wants_protobuf(request.headers.get("accept", "")):
            return Response(openapi_v2.openapi_v2_protobuf(),
                            media_type=openapi_v2.PROTOBUF_V2)
        return Response(openapi_v2.openapi_v2_json(), media_type="application/json")
    if parts == ["openapi", "v3"]:
        return JSONResponse(openapi.openapi_v3_index(resources))
    rest = parts[2:]
    doc = None
    if rest == ["api", "v1"]:
        doc = openapi.openapi_v3_document("", "v1", resources)
    elif len(rest) == 3 and rest[0] == "apis":
        doc = openapi.openapi_v3_document(rest[1], rest[2], resources)
    if doc is None:
        raise NotFound(f"no OpenAPI document at {request.url.path}")
    return JSONResponse(doc)
