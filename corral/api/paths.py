"""Kubernetes REST paths → what they address.

    /api/v1/pods                                   list across namespaces
    /api/v1/namespaces/{ns}/pods[/{name}[/{sub}]]   namespaced
    /api/v1/nodes[/{name}[/{sub}]]                  cluster-scoped
    /api/v1/namespaces/{name}[/status|/finalize]    the Namespace object itself
    /apis/{group}/{version}/...                     the same shapes for named groups
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.api.errors import NotFound
from corral.api.resources import BY_GROUP_PLURAL, Resource, ServedTable

# Not Kubernetes: the store's members and their health (`corral status`).
STORE_STATUS_PATH = "/corral/v1/store"


@dataclass(frozen=True)
class Target:
    resource: Resource
    namespace: str | None  # None: cluster-scoped, or a list across all namespaces
    name: str | None  # None: the collection
    subresource: str | None = None


def _not_found(path: str) -> NotFound:
    return NotFound(f"the server could not find the requested resource (path {path})")


def parse_resource_path(path: str, served: ServedTable | None = None) -> Target:
    """Parse a resource path; raises NotFound for anything the server does not
    serve (``served``: the server's table with its custom resources; without it,
    the built-in kinds)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found(path)
    if not rest:
        raise _not_found(path)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    resource = (served.get(group, rest[0], version) if served is not None
                else BY_GROUP_PLURAL.get((group, rest[0])))
    if resource is None or resource.version != version or len(rest) > 3:
        raise _not_found(path)
    if namespace is not None and not resource.namespaced:
        raise _not_found(path)
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if sub is not None and sub not in resource.subresources and not (
        resource.kind == "Namespace" and sub in ("status", "finalize")
    ):
        raise _not_found(path)
    return Target(resource, namespace, name, sub)
