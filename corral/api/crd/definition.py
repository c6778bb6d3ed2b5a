"""A CustomResourceDefinition read as what the API serves: one Resource per
served version, each carrying its CustomKind (schema, printer columns, scale
paths); and the CRD's own validation and status conditions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.api import names
from corral.api.crd.structural import check_structural
from corral.api.field_errors import FieldErrors
from corral.api.kinds.apiextensions import CustomResourceDefinition
from corral.api.resources import Resource
from corral.objects import Obj, meta, now_rfc3339, spec, status

SCOPES = ("Namespaced", "Cluster")


@dataclass(frozen=True)
class Scale:
    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str | None


@dataclass(frozen=True)
class CustomKind:
    """What a served custom resource needs beyond a built-in kind's Resource."""

    crd_name: str
    schema: dict[str, Any]
    printer_columns: tuple[dict[str, Any], ...]
    scale: Scale | None
    list_kind: str
    # The CRD is being deleted: its objects are read, updated and deleted (their
    # finalizers run) but no new one is created.
    terminating: bool = False


def resources_of(crd: Obj) -> tuple[Resource, ...]:
    """The resources a stored CRD serves."""
    s = spec(crd)
    group, names_ = s.get("group", ""), s.get("names") or {}
    served: list[Resource] = []
    for version in s.get("versions") or []:
        if not version.get("served", True):
            continue
        subs = version.get("subresources") or {}
        scale = subs.get("scale")
        custom = CustomKind(
            crd_name=meta(crd)["name"],
            schema=(version.get("schema") or {}).get("openAPIV3Schema") or {},
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            scale=Scale(scale.get("specReplicasPath", ""), scale.get("statusReplicasPath", ""),
                        scale.get("labelSelectorPath")) if isinstance(scale, dict) else None,
            list_kind=names_.get("listKind") or f"{names_.get('kind', '')}List",
            terminating=bool(meta(crd).get("deletionTimestamp")),
        )
        served.append(Resource(
            group, version["name"], names_.get("kind", ""), names_.get("plural", ""),
            s.get("scope") == "Namespaced", tuple(names_.get("shortNames") or ()),
            tuple(k for k in ("status", "scale") if k in subs),
            tuple(names_.get("categories") or ()), has_spec=False, custom=custom,
        ))
    return tuple(served)


def validate_crd(crd: CustomResourceDefinition, old: CustomResourceDefinition | None,
                 errs: FieldErrors) -> None:
    s, n = crd.spec, crd.spec.names
    if not s.group:
        errs.required("spec.group")
    elif "." not in s.group:
        errs.invalid("spec.group", s.group, "should be a domain with at least one dot")
    else:
        errs.each("spec.group", s.group, names.dns1123_subdomain(s.group))
    expected = f"{n.plural}.{s.group}"
    if crd.metadata.name and crd.metadata.name != expected:
        errs.invalid("metadata.name", crd.metadata.name, 'must be spec.names.plural+"."+spec.group')
    for path, value in (("plural", n.plural), ("kind", n.kind)):
        if not value:
            errs.required(f"spec.names.{path}")
    if n.plural and (n.plural != n.plural.lower() or names.dns1035_label(n.plural)):
        errs.invalid("spec.names.plural", n.plural, "a lowercase RFC 1035 label is required")
    if s.scope not in SCOPES:
        errs.not_supported("spec.scope", s.scope, SCOPES)
    if old is not None:
        for path, new_v, old_v in (("spec.group", s.group, old.spec.group),
                                   ("spec.scope", s.scope, old.spec.scope),
                                   ("spec.names.plural", n.plural, old.spec.names.plural)):
            if new_v != old_v:
                errs.invalid(path, new_v, "field is immutable")
    _validate_versions(crd, errs)


def _validate_versions(crd: CustomResourceDefinition, errs: FieldErrors) -> None:
    versions = crd.spec.versions
    if not versions:
        errs.required("spec.versions", "must have exactly one version marked as storage version")
        return
    if sum(1 for v in versions if v.storage) != 1:
        errs.invalid("spec.versions", [v.name for v in versions],
                     "must have exactly one version marked as storage version")
    seen: set[str] = set()
    for i, v in enumerate(versions):
        path = f"spec.versions[{i}]"
        if v.name in seen:
            errs.duplicate(f"{path}.name", v.name)
        seen.add(v.name)
        errs.each(f"{path}.name", v.name, names.dns1035_label(v.name))
        schema = v.schema_.open_apiv3_schema if v.schema_ else None
        if schema is None:
            errs.required(f"{path}.schema.openAPIV3Schema", "schemas are required")
        else:
            check_structural(schema, f"{path}.schema.openAPIV3Schema", errs)
        scale = v.subresources.scale if v.subresources else None
        if scale is not None and not scale.spec_replicas_path.startswith(".spec."):
            errs.invalid(f"{path}.subresources.scale.specReplicasPath",
                         scale.spec_replicas_path, "should be a json path under .spec")
        if scale is not None and not scale.status_replicas_path.startswith(".status."):
            errs.invalid(f"{path}.subresources.scale.statusReplicasPath",
                         scale.status_replicas_path, "should be a json path under .status")
        for j, col in enumerate(v.additional_printer_columns or []):
            col_path = f"{path}.additionalPrinterColumns[{j}]"
            if not col.name:
                errs.required(f"{col_path}.name")
            if not col.json_path:
                errs.required(f"{col_path}.jsonPath")
            if col.type not in ("integer", "number", "string", "boolean", "date"):
                errs.not_supported(f"{col_path}.type", col.type,
                                   ("boolean", "date", "integer", "number", "string"))


def with_status(crd: Obj, taken: dict[str, str]) -> Obj:
    """The CRD with the status a new or changed definition gets: NamesAccepted
    unless another CRD of its group already uses its plural/kind/short names
    (``taken``: name → CRD holding it), and Established with it."""
    s, names_ = spec(crd), spec(crd).get("names") or {}
    mine = meta(crd).get("name", "")
    clash = [n for n in (names_.get("plural"), names_.get("kind"), *names_.get("shortNames", []))
             if n and taken.get(n.lower(), mine) != mine]
    old = {c.get("type"): c for c in (status(crd)).get("conditions") or []}
    accepted = not clash
    conditions = [
        _condition(old, "NamesAccepted", accepted, "NoConflicts" if accepted else "NameConflict",
                   "no conflicts found" if accepted else
                   f"names {', '.join(clash)} are already in use"),
        _condition(old, "Established", accepted,
                   "InitialNamesAccepted" if accepted else "NotAccepted",
                   "the initial names have been accepted" if accepted else
                   "not all names are accepted"),
    ]
    stored = [v["name"] for v in s.get("versions") or [] if v.get("storage")]
    previous = status(crd).get("storedVersions") or []
    return {**crd, "status": {
        "conditions": conditions,
        "acceptedNames": {k: v for k, v in names_.items()} if accepted else {},
        "storedVersions": list(dict.fromkeys([*previous, *stored])),
    }}


def _condition(old: dict[str, Any], kind: str, ok: bool, reason: str, message: str) -> Obj:
    status = "True" if ok else "False"
    before = old.get(kind) or {}
    when = before.get("lastTransitionTime") if before.get("status") == status else None
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": when or now_rfc3339()}


def names_in_use(served: tuple[Resource, ...], group: str) -> dict[str, str]:
    """Every plural, kind and short name of ``group``'s custom resources → its CRD."""
    taken: dict[str, str] = {}
    for r in served:
        if r.group == group and r.custom is not None:
            for n in (r.plural, r.kind, *r.short_names):
                taken[n.lower()] = r.custom.crd_name
    return taken
