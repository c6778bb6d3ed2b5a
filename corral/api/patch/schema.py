"""Which lists a strategic merge patch merges, and by what key, per kind.

Kubernetes reads this from Go struct tags (``patchStrategy:"merge"``,
``patchMergeKey:"name"``) in core/v1, apps/v1, batch/v1 and meta/v1 types.go.
We copy those tags into a table of paths. A path is a tuple of field names from
the object root, with ``*`` standing for "any item of the list above". A list not
in the table is atomic: a patch replaces it whole (tolerations, args, command,
envFrom, taints, endpoint subsets, affinity terms ...).
"""

from __future__ import annotations

from dataclasses import dataclass

Path = tuple[str, ...]


@dataclass(frozen=True)
class ListRule:
    """How a list merges. ``merge_key`` None means a list of scalars merged as a
    set union (finalizers, podCIDRs); otherwise items are maps matched by that key."""

    merge_key: str | None


SET = ListRule(None)


def _keyed(key: str) -> ListRule:
    return ListRule(key)


# core/v1 Container: ports, env, volumeMounts, volumeDevices carry merge keys;
# args, command, envFrom, resizePolicy are atomic.
_CONTAINER: dict[Path, ListRule] = {
    ("ports",): _keyed("containerPort"),
    ("env",): _keyed("name"),
    ("volumeMounts",): _keyed("mountPath"),
    ("volumeDevices",): _keyed("devicePath"),
}

# core/v1 PodSpec. volumes are "merge,retainKeys": the retainKeys half is carried
# by the $retainKeys directive kubectl puts in each volume item.
_POD_SPEC_LISTS: dict[Path, ListRule] = {
    ("volumes",): _keyed("name"),
    ("imagePullSecrets",): _keyed("name"),
    ("hostAliases",): _keyed("ip"),
    ("topologySpreadConstraints",): _keyed("topologyKey"),
    ("schedulingGates",): _keyed("name"),
    ("resourceClaims",): _keyed("name"),
}

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

# meta/v1 ObjectMeta.
_OBJECT_META: dict[Path, ListRule] = {
    ("ownerReferences",): _keyed("uid"),
    ("finalizers",): SET,
}

_CONDITIONS: dict[Path, ListRule] = {("conditions",): _keyed("type")}


def _mount(prefix: Path, table: dict[Path, ListRule]) -> dict[Path, ListRule]:
    return {prefix + path: rule for path, rule in table.items()}


def _pod_spec() -> dict[Path, ListRule]:
    table = dict(_POD_SPEC_LISTS)
    for field in _CONTAINER_LISTS:
        table[(field,)] = _keyed("name")
        table.update(_mount((field, "*"), _CONTAINER))
    return table


_POD_STATUS: dict[Path, ListRule] = {
    **_CONDITIONS,
    ("podIPs",): _keyed("ip"),
    ("hostIPs",): _keyed("ip"),
}


def _templated(status: dict[Path, ListRule]) -> dict[Path, ListRule]:
    """A workload whose pod template lives at spec.template."""
    return {
        **_mount(("spec", "template", "metadata"), _OBJECT_META),
        **_mount(("spec", "template", "spec"), _pod_spec()),
        **_mount(("status",), status),
    }


_BY_KIND: dict[str, dict[Path, ListRule]] = {
    "Pod": {**_mount(("spec",), _pod_spec()), **_mount(("status",), _POD_STATUS)},
    "Deployment": _templated(_CONDITIONS),
    "ReplicaSet": _templated(_CONDITIONS),
    "Job": _templated(_CONDITIONS),
    "DaemonSet": _templated(_CONDITIONS),
    "StatefulSet": _templated(_CONDITIONS),
    "Node": {
        ("spec", "podCIDRs"): SET,
        **_mount(("status",), {**_CONDITIONS, ("addresses",): _keyed("type")}),
    },
    "Service": {("spec", "ports"): _keyed("port"), **_mount(("status",), _CONDITIONS)},
    "Namespace": _mount(("status",), _CONDITIONS),
}


def rules_for(kind: str) -> dict[Path, ListRule]:
    """The list rules of ``kind``; unknown kinds get ObjectMeta's rules only."""
    return {**_mount(("metadata",), _OBJECT_META), **_BY_KIND.get(kind, {})}
