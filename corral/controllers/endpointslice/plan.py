"""The EndpointSlices a Service should have: pure functions after Kubernetes'
endpointslice reconciler (staging/src/k8s.io/endpointslice/reconciler.go).

    desired_endpoints(service, pods, nodes)
      every selected pod with an address that has not finished, as an Endpoint
      (addresses [ip], conditions, nodeName, zone, targetRef, hostname), grouped
      by its resolved ports: corral's pods listen on host ports of their own, so
      pods whose ports differ go in different slices, as Kubernetes groups them
    plan_slices(service, desired, existing, max_per_slice=100) → Plan
      per group of ports, in Kubernetes' order:
      1. each existing slice keeps the endpoints still desired (updated in place);
         emptied → deleted, changed or relabelled → updated, else unchanged
      2. leftover endpoints fill the slices being updated, fullest first
      3. then the unchanged slice they fit best (when fewer than max are left),
         else new slices of at most max endpoints
      slices of groups no longer desired, or not owned by the Service, go;
      a Service with no endpoints keeps one empty placeholder slice;
      a slice to create instead reuses one to delete (an update, not two writes)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from corral.controllers.pods import is_ready
from corral.controllers.service_pods import serving_ports
from corral.objects import Obj, meta, name_of, namespace_of, spec, status, uid_of

MAX_ENDPOINTS_PER_SLICE = 100  # kube-controller-manager's --max-endpoints-per-slice
MAX_ENDPOINTS_PER_SLICE_BOUND = 1000  # what that flag may be (and what a slice may hold)
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
HEADLESS_LABEL = "service.kubernetes.io/headless"
# On the Endpoints the Endpoints controller writes, so they are not mirrored.
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
ZONE_LABEL = "topology.kubernetes.io/zone"
RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)

PortsKey = tuple[tuple[str, int | None, str, str], ...]  # name, port, protocol, appProtocol


@dataclass
class Group:
    """The endpoints that share one set of ports."""

    ports: list[Obj]
    endpoints: dict[tuple[str, ...], Obj] = field(default_factory=dict)  # by endpoint_key


@dataclass
class Plan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)


def max_per_slice(value: str | int) -> int:
    """A --max-endpoints-per-slice value, checked as kube-controller-manager does."""
    number = int(value)
    if not 1 <= number <= MAX_ENDPOINTS_PER_SLICE_BOUND:
        raise ValueError(f"max-endpoints-per-slice must be between 1 and "
                         f"{MAX_ENDPOINTS_PER_SLICE_BOUND}, inclusive, not {number}")
    return number


def ports_key(ports: list[Obj]) -> PortsKey:
    return tuple(sorted((str(p.get("name") or ""), p.get("port"), str(p.get("protocol") or "TCP"),
                         str(p.get("appProtocol") or "")) for p in ports))


def endpoint_key(endpoint: Obj) -> tuple[str, ...]:
    """What makes two endpoints the same one (its pod, its addresses)."""
    ref = endpoint.get("targetRef") or {}
    return (str(ref.get("uid") or ref.get("name") or ""), *(endpoint.get("addresses") or []))


# ---- what the pods say ---------------------------------------------------------------

def in_endpoints(pod: Obj) -> bool:
    """Kubernetes' ShouldPodBeInEndpoints with terminating pods included: a pod
    that has finished for good is no endpoint."""
    phase = status(pod).get("phase")
    policy = spec(pod).get("restartPolicy") or "Always"
    if policy == "Never":
        return phase not in ("Succeeded", "Failed")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def address_type(service: Obj) -> str:
    """The one address type corral's slices carry: its pods' addresses are IPv4
    unless the Service is an IPv6 one."""
    families = spec(service).get("ipFamilies") or []
    cluster_ip = str(spec(service).get("clusterIP") or "")
    if families:
        return "IPv6" if families[0] == "IPv6" else "IPv4"
    return "IPv6" if ":" in cluster_ip else "IPv4"


def pod_endpoint(service: Obj, pod: Obj, ip: str, node: Obj | None) -> Obj:
    serving = is_ready(pod)
    terminating = bool(meta(pod).get("deletionTimestamp"))
    publish = bool(spec(service).get("publishNotReadyAddresses"))
    endpoint: Obj = {
        "addresses": [ip],
        # A terminating pod is never "ready" (unless the Service publishes
        # everything), but still says whether it serves, for graceful draining.
        "conditions": {"ready": publish or (serving and not terminating),
                       "serving": serving, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod),
                      "uid": uid_of(pod)},
    }
    node_name = spec(pod).get("nodeName")
    if node_name:
        endpoint["nodeName"] = node_name
    zone = ((meta(node).get("labels") or {}).get(ZONE_LABEL) if node else None)
    if zone:
        endpoint["zone"] = zone
    pod_spec = spec(pod)
    if pod_spec.get("hostname") and pod_spec.get("subdomain") == name_of(service):
        endpoint["hostname"] = pod_spec["hostname"]
    return endpoint


def endpoint_ports(service: Obj, resolved: list[tuple[Obj, int]]) -> list[Obj]:
    ports = []
    for service_port, number in resolved:
        port: Obj = {"name": str(service_port.get("name") or ""), "port": number,
                     "protocol": str(service_port.get("protocol") or "TCP")}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def desired_endpoints(service: Obj, pods: list[Obj],
                      nodes: dict[str, Obj]) -> tuple[dict[PortsKey, Group], list[str]]:
    """The endpoints of the selected ``pods`` grouped by ports, and the names of
    pods left out because their node is not known (yet): Kubernetes leaves them
    out and tries again, unless the Service publishes not-ready addresses."""
    groups: dict[PortsKey, Group] = {}
    waiting: list[str] = []
    publish = bool(spec(service).get("publishNotReadyAddresses"))
    for pod in sorted(pods, key=name_of):
        serving = serving_ports(service, pod) if in_endpoints(pod) else None
        if serving is None:
            continue
        node_name = spec(pod).get("nodeName")
        node = nodes.get(node_name) if node_name else None
        if node_name and node is None and not publish:
            waiting.append(name_of(pod))
            continue
        ip, resolved = serving
        ports = endpoint_ports(service, resolved)
        group = groups.setdefault(ports_key(ports), Group(ports))
        endpoint = pod_endpoint(service, pod, ip, node)
        group.endpoints[endpoint_key(endpoint)] = endpoint
    return groups, waiting


# ---- the slices -----------------------------------------------------------------------

def slice_labels(service: Obj) -> dict[str, str]:
    """The Service's labels (less the reserved ones) and the reserved ones."""
    labels = {k: v for k, v in (meta(service).get("labels") or {}).items()
              if k not in RESERVED_LABELS}
    cluster_ip = spec(service).get("clusterIP")
    if not cluster_ip or cluster_ip == "None":
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = name_of(service)
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def new_slice(service: Obj, ports: list[Obj]) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": f"{name_of(service)}-", "namespace": namespace_of(service),
                     "labels": slice_labels(service),
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                                          "name": name_of(service), "uid": uid_of(service),
                                          "controller": True, "blockOwnerDeletion": True}]},
        "addressType": address_type(service),
        "endpoints": [],
        "ports": copy.deepcopy(ports),
    }


def managed_slices(slices: list[Obj], service: str, manager: str) -> list[Obj]:
    """The slices of ``service`` that ``manager`` wrote, less those being deleted."""
    return [s for s in slices
            if (meta(s).get("labels") or {}).get(SERVICE_NAME_LABEL) == service
            and (meta(s).get("labels") or {}).get(MANAGED_BY_LABEL) == manager
            and not meta(s).get("deletionTimestamp")]


def owned_by(eps: Obj, service: Obj) -> bool:
    return any(r.get("uid") == uid_of(service) and r.get("kind") == "Service"
               and r.get("apiVersion") == "v1" for r in meta(eps).get("ownerReferences") or [])


def plan_slices(service: Obj, groups: dict[PortsKey, Group], existing: list[Obj],
                max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    plan = Plan()
    kind = address_type(service)
    by_key: dict[PortsKey, list[Obj]] = {}
    for eps in existing:
        if owned_by(eps, service) and eps.get("addressType") == kind:
            by_key.setdefault(ports_key(eps.get("ports") or []), []).append(eps)
        else:
            plan.delete.append(eps)
    for key, group in groups.items():
        _plan_group(service, group, by_key.get(key, []), max_per_slice, plan)
    for key, slices in by_key.items():
        if key not in groups:
            plan.delete.extend(slices)
    if len(plan.delete) == len(existing) and not plan.create:
        _keep_placeholder(service, plan)
    _reuse_deleted(service, plan)
    return plan


def _plan_group(service: Obj, group: Group, slices: list[Obj], max_per_slice: int,
                plan: Plan) -> None:
    left = dict(group.endpoints)
    labels = slice_labels(service)
    updating: list[Obj] = []
    unchanged: list[Obj] = []
    for eps in slices:  # 1. keep what is still desired, as it is now
        old = eps.get("endpoints") or []
        kept = [left.pop(endpoint_key(e)) for e in old if endpoint_key(e) in left]
        if kept == old and (meta(eps).get("labels") or {}) == labels:
            unchanged.append(eps)
        elif not kept:
            plan.delete.append(eps)
        else:
            changed = copy.deepcopy(eps)
            changed["endpoints"], changed["metadata"]["labels"] = kept, labels
            updating.append(changed)
    queue = list(left.values())
    for eps in sorted(updating, key=lambda s: -len(s["endpoints"])):  # 2. fill those
        room = max_per_slice - len(eps["endpoints"])
        eps["endpoints"].extend(queue[:max(room, 0)])
        queue = queue[max(room, 0):]
    while queue:  # 3. the best-fitting unchanged slice, else a new one
        target = _slice_to_fill(unchanged, len(queue), max_per_slice) \
            if len(queue) < max_per_slice else None
        if target is not None:
            unchanged.remove(target)
            target = copy.deepcopy(target)
            updating.append(target)
        else:
            target = new_slice(service, group.ports)
            plan.create.append(target)
        room = max_per_slice - len(target["endpoints"])
        target["endpoints"].extend(queue[:room])
        queue = queue[room:]
    plan.update.extend(updating)


def _slice_to_fill(slices: list[Obj], count: int, max_per_slice: int) -> Obj | None:
    """The slice closest to full once ``count`` endpoints are added to it."""
    fitting = [s for s in slices if len(s.get("endpoints") or []) + count <= max_per_slice]
    return max(fitting, key=lambda s: len(s.get("endpoints") or []), default=None)


def _keep_placeholder(service: Obj, plan: Plan) -> None:
    """No endpoints at all: one empty slice says so (kept if it is already there)."""
    placeholder = new_slice(service, [])
    if len(plan.delete) == 1 and _same_placeholder(plan.delete[0], placeholder):
        plan.delete.clear()
    else:
        plan.create.append(placeholder)


def _same_placeholder(eps: Obj, placeholder: Obj) -> bool:
    return (not eps.get("endpoints") and not eps.get("ports")
            and eps.get("addressType") == placeholder["addressType"]
            and meta(eps).get("labels") == placeholder["metadata"]["labels"]
            and meta(eps).get("ownerReferences") == placeholder["metadata"]["ownerReferences"])


def _reuse_deleted(service: Obj, plan: Plan) -> None:
    """A slice to create takes the place of one to delete (same owner and
    address type), as Kubernetes' finalize does: one update, not two writes."""
    for old in list(plan.delete):
        if not plan.create:
            return
        if owned_by(old, service) and old.get("addressType") == plan.create[-1]["addressType"]:
            fresh = plan.create.pop()
            fresh["metadata"] = {**copy.deepcopy(meta(old)),
                                 "labels": fresh["metadata"]["labels"],
                                 "ownerReferences": fresh["metadata"]["ownerReferences"]}
            fresh["metadata"].pop("generateName", None)
            plan.delete.remove(old)
            plan.update.append(fresh)
