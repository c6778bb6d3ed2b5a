"""OpenAPI v3 documents: /openapi/v3 (the index) and one document per
group-version (/openapi/v3/api/v1, /openapi/v3/apis/apps/v1, ...).

Why these documents look the way they do (see /work/shared/KUBECTL.md):

- kubectl's default --validate=strict reads the group-version document and looks
  for a PATCH operation tagged with the kind's `x-kubernetes-group-version-kind`
  that takes a `fieldValidation` query parameter. Found, it leaves validation to
  the server (?fieldValidation=Strict); not found, it falls back to /openapi/v2
  (openapi_v2.py, built from these documents).
- PATCH operations carry no requestBody: with `application/strategic-merge-patch+json`
  listed there, client-side apply would take its merge keys from these schemas,
  which lack Kubernetes' x-kubernetes-patch-* extensions; without it kubectl uses
  its compiled-in strategic-merge metadata, which is right for every served kind.
- Component schemas are named as Kubernetes names them (io.k8s.api.core.v1.Pod)
  and are generated from corral's pydantic models, with descriptions of the main
  kinds' fields (openapi_descriptions.py), so `kubectl explain` explains.
- A version served by conversion (autoscaling/v1 HorizontalPodAutoscaler) has a
  document of its own, from its own model: without one kubectl explain cannot
  find the kind, and validation falls back to /openapi/v2.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from corral.api.kinds.catalog import model_of
from corral.api.openapi_descriptions import DESCRIPTIONS
from corral.api.resources import CONVERTED, RESOURCES, Resource, group_versions

_REF_PREFIX = "#/components/schemas/"
_META_PREFIX = "io.k8s.apimachinery.pkg.apis.meta.v1."
# Sub-objects that live in apimachinery's meta/v1 package in Kubernetes.
_META_MODELS = frozenset({"ObjectMeta", "OwnerReference", "ManagedFieldsEntry",
                          "LabelSelector", "LabelSelectorRequirement", "Condition"})

_WRITE_PARAMETERS: tuple[dict[str, Any], ...] = (
    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True},
     "description": "When present, indicates that modifications should not be persisted."},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True},
     "description": "A name associated with the actor or entity that is making these changes."},
    {"name": "fieldValidation", "in": "query",
     "schema": {"type": "string", "uniqueItems": True},
     "description": "Ignore, Warn or Strict: how to treat unknown or duplicate fields "
                    "in the request body. Strict rejects the request."},
)
_FORCE_PARAMETER: dict[str, Any] = {
    "name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True},
    "description": "Force is going to \"force\" Apply requests.",
}


def openapi_v3_index(resources: tuple[Resource, ...] = RESOURCES) -> dict[str, Any]:
    """/openapi/v3: where each group-version's document is, with a content hash
    so clients may cache it."""
    paths: dict[str, Any] = {}
    for group, version in group_versions(resources + CONVERTED):
        key = _gv_path(group, version).lstrip("/")
        custom = _custom_of(group, version, resources)
        digest = _hash(_custom_document(custom)) if custom else _document_hash(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


def openapi_v3_document(group: str, version: str,
                        resources: tuple[Resource, ...] = RESOURCES) -> dict[str, Any] | None:
    """The OpenAPI 3 document of one group-version, or None if not served."""
    if (group, version) not in group_versions(resources + CONVERTED):
        return None
    custom = _custom_of(group, version, resources)
    if custom:
        return _custom_document(custom)
    return copy.deepcopy(_document(group, version))


def _custom_of(group: str, version: str, resources: tuple[Resource, ...]) -> list[Resource]:
    return [r for r in resources
            if r.group == group and r.version == version and r.custom is not None]


def _custom_document(served: list[Resource]) -> dict[str, Any]:
    """A custom group-version's document: its paths, and each kind's schema as its
    CRD declares it (built per request: CRDs come and go)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for res in served:
        paths.update(_resource_paths(res))
        schema = copy.deepcopy(res.custom.schema) or {"type": "object"}
        schema["x-kubernetes-group-version-kind"] = [_gvk(res)]
        schemas[schema_name(res)] = schema
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
            "paths": paths, "components": {"schemas": schemas}}


def _hash(document: dict[str, Any]) -> str:
    body = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha512(body).hexdigest().upper()


@functools.cache
def _document_hash(group: str, version: str) -> str:
    return _hash(_document(group, version))


@functools.cache
def _document(group: str, version: str) -> dict[str, Any]:
    served = [r for r in RESOURCES + CONVERTED if r.group == group and r.version == version]
    paths: dict[str, Any] = {}
    for res in served:
        paths.update(_resource_paths(res))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": _schemas(served)},
    }


def _gv_path(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def schema_name(res: Resource, model_name: str | None = None) -> str:
    """Kubernetes' name for a kind's schema, e.g. io.k8s.api.apps.v1.Deployment."""
    name = model_name or res.kind
    if name in _META_MODELS:
        return _META_PREFIX + name
    package = res.group.split(".")[0] if res.group else "core"
    return f"io.k8s.api.{package}.{res.version}.{name}"


def _resource_paths(res: Resource) -> dict[str, Any]:
    base = _gv_path(res.group, res.version)
    if res.namespaced:
        base += "/namespaces/{namespace}"
    collection = f"{base}/{res.plural}"
    path_params = [_path_parameter("namespace")] if res.namespaced else []
    item_params = [_path_parameter("name"), *path_params]
    return {
        collection: {
            "parameters": path_params,
            "post": _operation(res, "create", "post", [*_WRITE_PARAMETERS], "201"),
        },
        f"{collection}/{{name}}": {
            "parameters": item_params,
            "get": _operation(res, "read", "get", [], "200"),
            "put": _operation(res, "replace", "put", [*_WRITE_PARAMETERS], "200"),
            "patch": _operation(res, "patch", "patch",
                                [*_WRITE_PARAMETERS, _FORCE_PARAMETER], "200"),
        },
    }


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "uniqueItems": True},
            "description": f"{name} of the object"}


def _operation(res: Resource, verb: str, action: str, parameters: list[dict[str, Any]],
               code: str) -> dict[str, Any]:
    ref = {"$ref": _REF_PREFIX + schema_name(res)}
    return {
        "tags": [f"{_package(res)}_{res.version}"],
        "operationId": _operation_id(res, verb),
        "parameters": parameters,
        "responses": {code: {"description": "OK",
                             "content": {"application/json": {"schema": ref}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(res),
    }


def _package(res: Resource) -> str:
    return res.group.split(".")[0] if res.group else "core"


def _operation_id(res: Resource, verb: str) -> str:
    scope = "Namespaced" if res.namespaced else ""
    return f"{verb}{_package(res).capitalize()}{res.version.capitalize()}{scope}{res.kind}"


def _gvk(res: Resource) -> dict[str, str]:
    return {"group": res.group, "version": res.version, "kind": res.kind}


def _schemas(served: list[Resource]) -> dict[str, Any]:
    """Component schemas of the served kinds and every sub-object they use,
    generated together so that two different models of one name stay apart."""
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (model, "validation") for r in served
        if (model := model_of(r.api_version, r.kind)) is not None]
    if not models:
        return {}
    anchor = served[0]
    _, top = models_json_schema(models, by_alias=True, ref_template=_REF_PREFIX + "{model}")
    defs: dict[str, Any] = top.get("$defs", {})
    renames = {name: schema_name(anchor, name) for name in defs}
    for res in served:
        renames[res.kind] = schema_name(res)
    schemas = {renames[name]: _clean(schema, renames) for name, schema in defs.items()}
    for model_name, (about, fields) in DESCRIPTIONS.items():
        if renames.get(model_name) in schemas:
            _describe(schemas[renames[model_name]], about, fields)
    for res in served:
        if schema_name(res) in schemas:
            schemas[schema_name(res)]["x-kubernetes-group-version-kind"] = [_gvk(res)]
    return schemas


def _describe(schema: dict[str, Any], about: str, fields: dict[str, str]) -> None:
    """Descriptions for `kubectl explain` (corral/api/openapi_descriptions.py)."""
    schema["description"] = about
    properties = schema.get("properties") or {}
    for name, text in fields.items():
        prop = properties.get(name)
        if prop is None:
            continue
        if "$ref" in prop:  # OpenAPI 3.0 ignores siblings of $ref: wrap it
            prop = {"allOf": [{"$ref": prop.pop("$ref")}], **prop}
        prop["description"] = text
        properties[name] = prop


def _clean(node: Any, renames: dict[str, str]) -> Any:
    """Turn pydantic's JSON Schema into the OpenAPI 3.0 shape Kubernetes uses:
    optional fields without the `null` alternative, no titles, refs renamed."""
    if isinstance(node, list):
        return [_clean(item, renames) for item in node]
    if not isinstance(node, dict):
        return node
    node = _without_null(node)
    cleaned: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and value is None):
            continue
        if key == "additionalProperties" and value is True:
            continue  # pydantic's extra="allow"; Kubernetes schemas don't say it
        if key == "$ref":
            cleaned[key] = _REF_PREFIX + renames.get(value.removeprefix(_REF_PREFIX), value)
        elif key == "properties":
            cleaned[key] = {name: _clean(prop, renames) for name, prop in value.items()}
        else:
            cleaned[key] = _clean(value, renames)
    if "$ref" in cleaned and len(cleaned) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; Kubernetes wraps the ref in allOf.
        cleaned["allOf"] = [{"$ref": cleaned.pop("$ref")}]
    return cleaned


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    options = node.get("anyOf")
    if not isinstance(options, list):
        return node
    kept = [o for o in options if o != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(options):
        return node
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    merged.update(kept[0])
    return merged
