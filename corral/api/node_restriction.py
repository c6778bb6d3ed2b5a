"""What a node's own credential may touch: Kubernetes' Node authorizer and
NodeRestriction admission, for users ``system:node:<name>`` in group system:nodes.

RBAC (the system:node ClusterRole, bound to the group) says which kinds a node
may use at all; this middleware, after it, narrows that to the node's own objects:

    nodes, nodes/status       write only its own Node (a create's body must name it)
    leases (kube-node-lease)  write only its own Lease
    pods, allocs (+ /status)  write or delete only those bound to it (spec.nodeName)
    secrets, configmaps       get only those a pod bound to it references
                              (env, envFrom, volumes, imagePullSecrets); never list/watch
    serviceaccounts           get only those its pods run as; a token (TokenRequest)
                              only bound to a pod bound to it
    its own labels            (NodeLabelAdmission, which sees the object written) never
                              set, change or remove one under node-restriction.kubernetes.io/,
                              nor one under kubernetes.io/ or k8s.io/ that is not the
                              kubelet's own (hostname, os, arch, zone, region, instance
                              type, kubelet.kubernetes.io/*, node.kubernetes.io/*): labels
                              that steer workloads to a node are the operator's to give

A refusal is a 403 worded as kube-apiserver's, with the Node authorizer's reason.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.auth import REQUESTER
from corral.api.authz import Attributes, deny, forbidden, request_attributes
from corral.api.errors import Forbidden
from corral.api.registry import Registry
from corral.api.registry.read import Filter, list_objects
from corral.api.resources import BY_KIND, Resource
from corral.objects import Obj, meta, spec

NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
LEASE_NAMESPACE = "kube-node-lease"
MAX_CREATE_BODY = 1 << 20
_WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_BOUND_KINDS = {"pods": "Pod", "allocs": "Alloc"}


def node_name_of(user: Any) -> str | None:
    name = getattr(user, "name", "")
    if NODES_GROUP in getattr(user, "groups", ()) and name.startswith(NODE_PREFIX):
        return str(name[len(NODE_PREFIX):]) or None
    return None


class NodeRestrictionMiddleware:
    def __init__(self, app: ASGIApp, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        node = node_name_of(scope.get("user")) if scope["type"] in ("http", "websocket") else None
        if node is None:
            await self.app(scope, receive, send)
            return
        attrs = request_attributes(scope)
        if attrs.verb == "create" and not attrs.name and (
                attrs.resource == "nodes" or (attrs.resource, attrs.namespace) == (
                    "leases", LEASE_NAMESPACE)):
            body, receive = await _buffered(receive)
            attrs = _named_by_body(attrs, body)
        if (attrs.resource, attrs.subresource, attrs.verb) == ("serviceaccounts", "token",
                                                               "create"):
            body, receive = await _buffered(receive)
            reason = await self._token_refusal(node, attrs, body)
        else:
            reason = await self._refusal(node, attrs)
        if reason is None:
            await self.app(scope, receive, send)
            return
        await deny(scope, send, forbidden(attrs, reason))

    async def _refusal(self, node: str, a: Attributes) -> str | None:
        if not a.resource_request:
            return None
        if a.resource == "nodes" and a.verb in _WRITES and a.name != node:
            return f"node '{node}' cannot modify node '{a.name}'"
        if (a.resource == "leases" and a.namespace == LEASE_NAMESPACE and a.verb in _WRITES
                and a.name != node):
            return f"node '{node}' cannot modify lease '{a.name}'"
        if a.resource in _BOUND_KINDS and a.verb in _WRITES:
            return await self._bound(node, a)
        if a.resource in ("secrets", "configmaps", "serviceaccounts"):
            return await self._referenced(node, a)
        return None

    async def _token_refusal(self, node: str, a: Attributes, body: bytes) -> str | None:
        """kube-apiserver's NodeRestriction words for a node's TokenRequest."""
        try:
            ref = (orjson.loads(body).get("spec") or {}).get("boundObjectRef") or {}
        except (orjson.JSONDecodeError, AttributeError):
            ref = {}
        if not isinstance(ref, dict) or ref.get("kind") != "Pod":
            return f"node '{node}' requested token not bound to a pod"
        pod = await self.registry.find(BY_KIND["Pod"], a.namespace, str(ref.get("name") or ""))
        if pod is None or spec(pod).get("nodeName") != node:
            return f"node '{node}' requested token bound to a pod scheduled on a different node"
        return None

    async def _bound(self, node: str, a: Attributes) -> str | None:
        if a.verb == "create" and not a.subresource:
            return f"node '{node}' cannot create {a.resource}"
        if not a.name:
            return f"node '{node}' can only {a.verb} {a.resource} by name"
        obj = await self.registry.find(BY_KIND[_BOUND_KINDS[a.resource]], a.namespace, a.name)
        if obj is not None and spec(obj).get("nodeName") != node:
            return f"no relationship found between node '{node}' and this object"
        return None

    async def _referenced(self, node: str, a: Attributes) -> str | None:
        if a.verb != "get" or not a.name:
            return f"node '{node}' may only get {a.resource} its pods reference, by name"
        pods = BY_KIND["Pod"]
        page = await list_objects(self.registry.store, pods, a.namespace,
                                  Filter(pods, field_selector=f"spec.nodeName={node}"))
        if any(a.name in references(pod, a.resource) for pod in page.items):
            return None
        return f"no relationship found between node '{node}' and this object"


def references(pod: dict[str, Any], resource: str) -> set[str]:
    """The Secrets, ConfigMaps or ServiceAccount a pod names, as the Node
    authorizer's graph has them."""
    s = spec(pod)
    if resource == "serviceaccounts":
        return {str(s.get("serviceAccountName") or s.get("serviceAccount") or "default")}
    found: set[str] = set()
    secret = resource == "secrets"
    env_key, from_key, vol_key = (("secretKeyRef", "secretRef", "secret") if secret
                                  else ("configMapKeyRef", "configMapRef", "configMap"))
    for c in [*(s.get("initContainers") or []), *(s.get("containers") or [])]:
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get(env_key) or {}
            found.add(str(ref.get("name") or ""))
        for env_from in c.get("envFrom") or []:
            found.add(str((env_from.get(from_key) or {}).get("name") or ""))
    for volume in s.get("volumes") or []:
        source = volume.get(vol_key) or {}
        found.add(str(source.get("secretName" if secret else "name") or ""))
        for projected in (volume.get("projected") or {}).get("sources") or []:
            found.add(str((projected.get(vol_key) or {}).get("name") or ""))
    if secret:
        found.update(str(r.get("name") or "") for r in s.get("imagePullSecrets") or [])
    found.discard("")
    return found


def _named_by_body(a: Attributes, body: bytes) -> Attributes:
    try:
        name = str(meta(orjson.loads(body)).get("name") or "")
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        name = ""  # not JSON a node would send: refused as naming another object
    return dataclasses.replace(a, name=name or "<unnamed>")


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The request body, and a receive that replays it to the app."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_CREATE_BODY or not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return body, replay


# The labels a kubelet may set on its own Node (k8s.io/kubelet/pkg/apis: kubeletLabels
# and kubeletLabelNamespaces); every other label under kubernetes.io or k8s.io is not
# the node's to choose, and node-restriction.kubernetes.io is reserved outright.
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
    "beta.kubernetes.io/os", "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type", "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region", "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
})
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
RESTRICTED_NAMESPACE = "node-restriction.kubernetes.io"


def _in_domain(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith(f".{domain}")


def forbidden_label(key: str) -> bool:
    """May a node not set this label on itself? (NodeRestriction's getForbiddenLabels)"""
    namespace = key.split("/", 1)[0] if "/" in key else ""
    if _in_domain(namespace, RESTRICTED_NAMESPACE):
        return True
    if not (_in_domain(namespace, "kubernetes.io") or _in_domain(namespace, "k8s.io")):
        return False
    if key in KUBELET_LABELS:
        return False
    return not any(_in_domain(namespace, ns) for ns in KUBELET_LABEL_NAMESPACES)


def modified_labels(new: dict[str, str], old: dict[str, str]) -> set[str]:
    """Keys added, changed or removed."""
    return {k for k in new.keys() | old.keys() if new.get(k) != old.get(k)}


class NodeLabelAdmission:
    """A node's credential writing its Node may not touch the labels above."""

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        node = node_name_of(REQUESTER.get())
        if res.kind != "Node" or node is None:
            return
        labels = dict(meta(obj).get("labels") or {})
        previous = dict(meta(old).get("labels") or {}) if old is not None else {}
        bad = sorted(k for k in modified_labels(labels, previous) if forbidden_label(k))
        if not bad:
            return
        name = meta(obj).get("name", "")
        # kube-apiserver's wording, for a registration and for a later write.
        why = (f'node "{node}" is not allowed to set the following labels' if old is None
               else "is not allowed to modify labels")
        raise Forbidden(f'nodes "{name}" is forbidden: {why}: {", ".join(bad)}',
                        kind="nodes", name=str(name))
