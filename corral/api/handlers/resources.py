"""One endpoint for every resource path: it parses the path and dispatches on the
HTTP method to the registry. Kubernetes verbs:

    GET    collection → list | watch        GET    item → get (status, scale, log)
    POST   collection → create              POST   item/binding|eviction
    PUT    item → update (status, scale)    PATCH  item → patch (status, scale)
    DELETE item → delete                    DELETE collection → deletecollection
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from corral.api.body import media_type, parse_object, read_body
from corral.api.conversion import stored, to_served, to_stored
from corral.api.errors import BadRequest, MethodNotAllowed, NotFound
from corral.api.handlers.responses import (
    JSONResponse,
    render_list,
    render_one,
    warning_headers,
)
from corral.api.handlers.watch import watch_response
from corral.api.paths import Target, parse_resource_path
from corral.api.registry import (
    DeleteOptions,
    FieldValidation,
    Filter,
    Registry,
    Result,
    delete,
    delete_collection,
    eviction,
    list_objects,
)
from corral.api.registry import subresources as sub

LogHandler = Callable[[Request, Target], Awaitable[Response]]


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true")


INT64_MAX = 2**63 - 1


def _int_param(request: Request, name: str) -> int:
    """A non-negative int64 query parameter (Kubernetes' limit is an int64)."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return 0
    try:
        value = int(raw) if len(raw) <= 20 else INT64_MAX + 1
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if value < 0 or value > INT64_MAX:
        raise BadRequest(f"{name}: Invalid value: {raw!r}: must be between 0 and {INT64_MAX}")
    return value


def _field_validation(request: Request) -> FieldValidation:
    """Kubernetes' fieldValidation: Warn when absent (the server default since 1.27)."""
    mode = request.query_params.get("fieldValidation", "") or "Warn"
    if mode not in ("Strict", "Warn", "Ignore"):
        raise BadRequest(f'fieldValidation: Unsupported value: "{mode}": supported values: '
                         '"Ignore", "Strict", "Warn"')
    return mode  # type: ignore[return-value]


def _list_resource_version(request: Request) -> None:
    """A list's resourceVersion must be a revision ("" and "0" mean any), as
    kube-apiserver refuses anything else with 400."""
    raw = request.query_params.get("resourceVersion", "")
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 19):
        raise BadRequest(f"invalid resource version: {raw!r} is not a revision")


def _dry_run(request: Request) -> bool:
    value = request.query_params.get("dryRun", "")
    if value not in ("", "All"):
        raise BadRequest(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return value == "All"


class ResourceHandler:
    def __init__(self, registry: Registry, logs: LogHandler | None = None) -> None:
        self.registry = registry
        self.logs = logs

    async def __call__(self, request: Request) -> Response:
        target = parse_resource_path(request.url.path, self.registry.served)
        method = request.method
        if target.name is None:
            if method == "GET":
                return await self._list_or_watch(request, target)
            if method == "POST":
                return await self._create(request, target)
            if method == "DELETE":
                return await self._delete_collection(request, target)
        else:
            if method == "GET":
                return await self._get(request, target)
            if method == "PUT":
                return await self._update(request, target)
            if method == "PATCH":
                return await self._patch(request, target)
            if method == "DELETE" and target.subresource is None:
                return await self._delete(request, target)
            if method == "POST" and target.subresource in ("binding", "eviction"):
                return await self._post_subresource(request, target)
        raise MethodNotAllowed(f"the server does not allow this method on the requested "
                               f"resource ({method} {request.url.path})")

    def _check_namespace_given(self, target: Target) -> None:
        if target.resource.namespaced and target.namespace is None and target.name is not None:
            raise NotFound("the server could not find the requested resource")

    async def _list_or_watch(self, request: Request, target: Target) -> Response:
        res = target.resource
        q = request.query_params
        flt = Filter(res, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        if _flag(request, "watch"):
            return await watch_response(request, self.registry.store, target, flt)
        _list_resource_version(request)
        page = await list_objects(self.registry.store, stored(res), target.namespace, flt,
                                  limit=_int_param(request, "limit"),
                                  continue_token=q.get("continue", ""))
        return JSONResponse(render_list(request, res, page.items, page.revision,
                                        page.continue_token))

    async def _get(self, request: Request, target: Target) -> Response:
        self._check_namespace_given(target)
        res, name = target.resource, target.name or ""
        if target.subresource == "log":
            if self.logs is None:
                raise NotFound("pod logs are served by the node agents, none is connected")
            return await self.logs(request, target)
        if _flag(request, "watch"):
            flt = Filter(res, request.query_params.get("labelSelector", ""),
                         f"metadata.name={name}")
            return await watch_response(request, self.registry.store, target, flt)
        obj = await self.registry.get(stored(res), target.namespace, name)
        if target.subresource == "scale":
            return JSONResponse(sub.scale_of(res, obj))
        return JSONResponse(render_one(request, res, obj))

    async def _create(self, request: Request, target: Target) -> Response:
        res = target.resource
        if res.namespaced and target.namespace is None:
            raise MethodNotAllowed(f"create of {res.plural} needs a namespace in the path")
        validation, warnings = _field_validation(request), list[str]()
        body = to_stored(res, parse_object(await read_body(request),
                                           request.headers.get("content-type")),
                         validation, warnings)
        result = await self.registry.create(stored(res), target.namespace, body,
                                            validation=validation, dry_run=_dry_run(request))
        result.warnings[:0] = warnings
        return self._result(request, target, result, 201)

    async def _update(self, request: Request, target: Target) -> Response:
        self._check_namespace_given(target)
        res, name = target.resource, target.name or ""
        body = parse_object(await read_body(request), request.headers.get("content-type"))
        if target.subresource == "scale":
            result = await sub.update_scale(self.registry, res, target.namespace or "", name,
                                            body, dry_run=_dry_run(request))
            return JSONResponse(sub.scale_of(res, result.obj))
        self._check_subresource(target, ("status", "finalize", "approval"))
        validation, warnings = _field_validation(request), list[str]()
        result = await self.registry.update(stored(res), target.namespace, name,
                                            to_stored(res, body, validation, warnings),
                                            subresource=target.subresource,
                                            validation=validation, dry_run=_dry_run(request))
        result.warnings[:0] = warnings
        return self._result(request, target, result, 200)

    async def _patch(self, request: Request, target: Target) -> Response:
        self._check_namespace_given(target)
        res, name = target.resource, target.name or ""
        body = await read_body(request)
        ctype = media_type(request.headers.get("content-type"))
        if target.subresource == "scale":
            result = await sub.patch_scale(self.registry, res, target.namespace or "", name,
                                           ctype, body, dry_run=_dry_run(request))
            return JSONResponse(sub.scale_of(res, result.obj))
        self._check_subresource(target, ("status", "approval"))
        result = await self.registry.patch(stored(res), target.namespace, name, ctype, body,
                                           served=res, subresource=target.subresource,
                                           validation=_field_validation(request), dry_run=_dry_run(request))
        return self._result(request, target, result, 201 if result.created else 200)

    async def _delete(self, request: Request, target: Target) -> Response:
        self._check_namespace_given(target)
        opts = await self._delete_options(request)
        obj, _gone = await delete(self.registry, stored(target.resource), target.namespace,
                                  target.name or "", opts)
        return JSONResponse(to_served(target.resource, obj))

    async def _delete_collection(self, request: Request, target: Target) -> Response:
        res = target.resource
        if res.kind == "Namespace":  # kube-apiserver does not serve it either
            raise MethodNotAllowed("the server does not allow this method on the requested "
                                   "resource (deletecollection namespaces)")
        q = request.query_params
        flt = Filter(res, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        opts = await self._delete_options(request)
        page = await list_objects(self.registry.store, stored(res), target.namespace, flt)
        deleted = await delete_collection(self.registry, stored(res), page.items, opts)
        return JSONResponse(render_list(request, res, deleted, page.revision, ""))

    async def _post_subresource(self, request: Request, target: Target) -> Response:
        body = parse_object(await read_body(request), request.headers.get("content-type"))
        ns, name = target.namespace or "", target.name or ""
        if target.subresource == "binding":
            await sub.bind(self.registry, ns, name, body, target.resource)
        else:
            await eviction.evict(self.registry, ns, name, body)
        return JSONResponse({"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success", "code": 201}, status_code=201)

    async def _delete_options(self, request: Request) -> DeleteOptions:
        raw = await read_body(request)
        body: dict[str, Any] | None = None
        if raw.strip():
            body = parse_object(raw, request.headers.get("content-type"))
        return DeleteOptions.from_body(body, dict(request.query_params))

    def _check_subresource(self, target: Target, allowed: tuple[str, ...]) -> None:
        if target.subresource is not None and target.subresource not in allowed:
            raise MethodNotAllowed(
                f"the server does not allow this method on {target.resource.plural}/"
                f"{target.subresource}")

    def _result(self, request: Request, target: Target, result: Result, code: int) -> Response:
        return JSONResponse(render_one(request, target.resource, result.obj), status_code=code,
                            headers=warning_headers(result.warnings))
