"""Validation of a LimitRange, as Kubernetes' ValidateLimitRange words it.

    spec.limits[i].type      Container | Pod | PersistentVolumeClaim (or a qualified
                             name with a domain), each at most once
    per resource named       min ≤ defaultRequest ≤ default ≤ max, and min ≤ default,
                             defaultRequest ≤ max; maxLimitRequestRatio ≥ 1 and
                             ≤ max/min; a non-overcommitable resource's default and
                             defaultRequest equal
    type Pod                 no default, no defaultRequest (a pod has no limits of
                             its own to default)
    PersistentVolumeClaim    a min or max of storage

Runs after defaults (corral.api.defaults: a Container item's default comes from
its max, its defaultRequest from its default or min), so the orderings also hold
for what the LimitRanger admission plugin will fill in.
"""

from __future__ import annotations

from decimal import Decimal

from corral.api import names
from corral.api.field_errors import FieldErrors
from corral.api.kinds.core import LimitRange, LimitRangeItem
from corral.api.pod_validation import overcommit_allowed, validate_quantities
from corral.api.quantity import milli_value, parse_quantity

LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
# Kubernetes' standard resource names (helper.IsStandardResourceName) a
# PersistentVolumeClaim item may bound besides storage.
STANDARD_RESOURCES = (*CONTAINER_RESOURCES, "storage", "pods", "services",
                      "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
                      "persistentvolumeclaims", "requests.cpu", "requests.memory",
                      "requests.storage", "limits.cpu", "limits.memory")
Bounds = dict[str, str]


def validate_limit_range(lr: LimitRange, old: LimitRange | None, errs: FieldErrors) -> None:
    seen: set[str] = set()
    for i, item in enumerate(lr.spec.limits if lr.spec is not None else ()):
        path = f"spec.limits[{i}]"
        _validate_type(item.type, f"{path}.type", errs)
        if item.type in seen:
            errs.duplicate(f"{path}.type", item.type)
        seen.add(item.type)
        _validate_item(item, path, errs)


def _validate_type(value: str, path: str, errs: FieldErrors) -> None:
    problems = names.qualified_name(value)
    errs.each(path, value, problems)
    if not problems and "/" not in value and value not in LIMIT_TYPES:
        errs.invalid(path, value, "must be a standard limit type or fully qualified")


def _validate_item(item: LimitRangeItem, path: str, errs: FieldErrors) -> None:
    fields: dict[str, Bounds] = {"max": item.max or {}, "min": item.min or {}}
    if item.type == "Pod":
        for name, given in (("default", item.default), ("defaultRequest", item.default_request)):
            if given:
                errs.forbidden(f"{path}.{name}", "may not be specified when `type` is 'Pod'")
    else:
        fields["default"] = item.default or {}
        fields["defaultRequest"] = item.default_request or {}
    fields["maxLimitRequestRatio"] = item.max_limit_request_ratio or {}
    readable = True
    for name, bounds in fields.items():
        before = len(errs)
        validate_quantities(bounds, f"{path}.{name}", errs)
        readable = readable and len(errs) == before
        for resource in bounds:
            _validate_resource_name(item.type, resource, f"{path}.{name}[{resource}]", errs)
    if item.type == "PersistentVolumeClaim" and "storage" not in fields["min"] \
            and "storage" not in fields["max"]:
        errs.required(f"{path}.limits", "either minimum or maximum storage value is "
                      "required, but neither was provided")
    if not readable:
        return  # orderings of unreadable quantities say nothing more
    for resource in sorted(set().union(*fields.values())):
        _validate_order(resource, {name: b[resource] for name, b in fields.items()
                                   if resource in b}, path, errs)


def _validate_resource_name(limit_type: str, name: str, path: str, errs: FieldErrors) -> None:
    problems = names.qualified_name(name)
    if problems:
        errs.each(path, name, problems)
    elif "/" in name:
        return
    elif limit_type in ("Pod", "Container"):
        if name not in CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.invalid(path, name, "must be a standard resource for containers")
    elif name not in STANDARD_RESOURCES and not name.startswith("hugepages-"):
        errs.invalid(path, name, "must be a standard resource type or fully qualified")


def _validate_order(resource: str, given: Bounds, path: str, errs: FieldErrors) -> None:
    """One resource's bounds of one item, in ValidateLimitRange's order of checks."""
    q = {name: parse_quantity(text) for name, text in given.items()}
    low, high = given.get("min"), given.get("max")
    default, request = given.get("default"), given.get("defaultRequest")

    def where(name: str) -> str:
        return f"{path}.{name}[{resource}]"

    if low is not None and high is not None and q["min"] > q["max"]:
        errs.invalid(where("min"), low, f"min value {low} is greater than max value {high}")
    if request is not None and low is not None and q["min"] > q["defaultRequest"]:
        errs.invalid(where("defaultRequest"), request,
                     f"min value {low} is greater than default request value {request}")
    if request is not None and high is not None and q["defaultRequest"] > q["max"]:
        errs.invalid(where("defaultRequest"), request,
                     f"default request value {request} is greater than max value {high}")
    if request is not None and default is not None and q["defaultRequest"] > q["default"]:
        errs.invalid(where("defaultRequest"), request, f"default request value {request} "
                     f"is greater than default limit value {default}")
    if default is not None and low is not None and q["min"] > q["default"]:
        errs.invalid(where("default"), low,
                     f"min value {low} is greater than default value {default}")
    if default is not None and high is not None and q["default"] > q["max"]:
        errs.invalid(where("default"), high,
                     f"default value {default} is greater than max value {high}")
    _validate_ratio(given, q, where("maxLimitRequestRatio"), errs)
    if (not overcommit_allowed(resource) and default is not None and request is not None
            and q["default"] != q["defaultRequest"]):
        errs.invalid(where("defaultRequest"), request, f"default value {default} must equal "
                     f"to defaultRequest value {request} in {resource}")


def _validate_ratio(given: Bounds, q: dict[str, Decimal], path: str,
                    errs: FieldErrors) -> None:
    ratio = given.get("maxLimitRequestRatio")
    if ratio is None:
        return
    if q["maxLimitRequestRatio"] < 1:
        errs.invalid(path, ratio, f"ratio {ratio} is less than 1")
    low, high = given.get("min"), given.get("max")
    if low is None or high is None:
        return
    # Kubernetes compares in milli-units as floats; a zero min allows any ratio.
    low_milli = milli_value(low)
    widest = milli_value(high) / low_milli if low_milli else float("inf")
    if milli_value(ratio) / 1000 > widest:
        errs.invalid(path, ratio, f"ratio {ratio} is greater than max/min = {widest:f}")
