"""Discovery documents: /version, /api, /apis, /api/v1, /apis/{group}/{version}.

Everything is built from corral.api.resources.SERVED (the stored kinds and the
computed ones: reviews, metrics), so a kind added there is discoverable. Two shapes are served, as Kubernetes does:

    legacy      APIVersions (/api), APIGroupList (/apis), APIResourceList (per
                group-version): kubectl reads /api/v1 in any case, because drain
                looks there for pods/eviction.
    aggregated  apidiscovery.k8s.io/v2 APIGroupDiscoveryList for /api or /apis in
                one response; kubectl 1.32 asks for it first and accepts it only
                when the Content-Type is exactly AGGREGATED_DISCOVERY_CONTENT_TYPE.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from typing import Any

import corral
from corral.api.resources import SERVED, Resource, group_versions

AGGREGATED_DISCOVERY_CONTENT_TYPE = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
)

KUBERNETES_MAJOR = "1"
KUBERNETES_MINOR = "32"
KUBERNETES_GIT_VERSION = "v1.32.0"

_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}


@dataclass(frozen=True)
class Subresource:
    """What a subresource answers with, and which verbs it takes.

    kind None means the parent's own kind (status, log); group/version None mean
    the parent's group-version."""

    verbs: tuple[str, ...]
    kind: str | None = None
    group: str | None = None
    version: str | None = None


SUBRESOURCES: dict[str, Subresource] = {
    "status": Subresource(("get", "patch", "update")),
    "scale": Subresource(("get", "patch", "update"), "Scale", "autoscaling", "v1"),
    "binding": Subresource(("create",), "Binding", "", "v1"),
    "eviction": Subresource(("create",), "Eviction", "policy", "v1"),
    "log": Subresource(("get",)),
    "exec": Subresource(("create", "get"), "PodExecOptions", "", "v1"),
    "attach": Subresource(("create", "get"), "PodAttachOptions", "", "v1"),
    "portforward": Subresource(("create", "get"), "PodPortForwardOptions", "", "v1"),
    "token": Subresource(("create",), "TokenRequest", "authentication.k8s.io", "v1"),
}


def version_info() -> dict[str, Any]:
    """/version: a Kubernetes 1.32 version.Info, so kubectl's dispatcher picks
    its 1.32 client, plus corral's own version."""
    return {
        "major": KUBERNETES_MAJOR,
        "minor": KUBERNETES_MINOR,
        "gitVersion": KUBERNETES_GIT_VERSION,
        "platform": _platform(),
        "compiler": sys.implementation.name,
        "pythonVersion": platform.python_version(),
        "corralVersion": corral.__version__,
    }


def _platform() -> str:
    machine = platform.machine().lower()
    return f"{platform.system().lower()}/{_GO_ARCH.get(machine, machine)}"


def api_versions(server_address: str = "") -> dict[str, Any]:
    """/api (legacy): the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address},
        ],
    }


def api_group_list(resources: tuple[Resource, ...] = SERVED) -> dict[str, Any]:
    """/apis (legacy): every named group with its versions."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        _api_group(group, versions) for group, versions in _named_groups(resources).items()
    ]}


def _named_groups(resources: tuple[Resource, ...]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for group, version in group_versions(resources):
        if group:
            groups.setdefault(group, []).append(version)
    return groups


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def api_resource_list(group: str, version: str,
                      resources: tuple[Resource, ...] = SERVED) -> dict[str, Any] | None:
    """/api/v1 or /apis/{group}/{version} (legacy), or None if not served."""
    served = _resources_of(group, version, resources)
    if not served:
        return None
    entries: list[dict[str, Any]] = []
    for res in served:
        entries.append(_legacy_resource(res))
        entries.extend(_legacy_subresource(res, sub) for sub in res.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def _resources_of(group: str, version: str, resources: tuple[Resource, ...]) -> list[Resource]:
    return [r for r in resources if r.group == group and r.version == version]


def _legacy_resource(res: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    return entry


def _legacy_subresource(res: Resource, name: str) -> dict[str, Any]:
    sub = subresource_info(name)
    entry: dict[str, Any] = {
        "name": f"{res.plural}/{name}",
        "singularName": "",
        "namespaced": res.namespaced,
        "kind": sub.kind or res.kind,
        "verbs": list(sub.verbs),
    }
    # Group and version are written only where they differ from the parent's,
    # as Kubernetes does (drain needs them on pods/eviction: policy/v1).
    group = res.group if sub.group is None else sub.group
    version = res.version if sub.version is None else sub.version
    if (group, version) != (res.group, res.version):
        entry["group"] = group
        entry["version"] = version
    return entry


def subresource_info(name: str) -> Subresource:
    """A subresource's kind and verbs; an unknown one answers with its parent's
    kind and takes get."""
    return SUBRESOURCES.get(name, Subresource(("get",)))


def wants_aggregated(accept_header: str) -> bool:
    """Whether the Accept header asks for apidiscovery.k8s.io/v2 aggregated
    discovery (in JSON; corral serves no protobuf)."""
    for media_range in accept_header.split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        fields = dict(p.partition("=")[::2] for p in params)
        if (media_type == "application/json" and fields.get("g") == "apidiscovery.k8s.io"
                and fields.get("v") == "v2" and fields.get("as") == "APIGroupDiscoveryList"):
            return True
    return False


def aggregated_discovery(core: bool, resources: tuple[Resource, ...] = SERVED) -> dict[str, Any]:
    """APIGroupDiscoveryList for /api (core=True) or /apis (core=False)."""
    if core:
        items = [_group_discovery("", ["v1"], resources)]
    else:
        items = [_group_discovery(g, vs, resources)
                 for g, vs in _named_groups(resources).items()]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def _group_discovery(group: str, versions: list[str],
                     resources: tuple[Resource, ...]) -> dict[str, Any]:
    return {
        "metadata": {"name": group} if group else {},
        "versions": [
            {
                "version": version,
                "resources": [_resource_discovery(r) for r in
                              _resources_of(group, version, resources)],
                "freshness": "Current",
            }
            for version in versions
        ],
    }


def _resource_discovery(res: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": res.plural,
        "responseKind": _gvk(res.group, res.version, res.kind),
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    if res.subresources:
        entry["subresources"] = [_subresource_discovery(res, s) for s in res.subresources]
    return entry


def _subresource_discovery(res: Resource, name: str) -> dict[str, Any]:
    sub = subresource_info(name)
    group = res.group if sub.group is None else sub.group
    version = res.version if sub.version is None else sub.version
    return {
        "subresource": name,
        "responseKind": _gvk(group, version, sub.kind or res.kind),
        "verbs": list(sub.verbs),
    }


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}
