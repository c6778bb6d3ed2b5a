"""The endpointslice-mirroring controller (Kubernetes' endpointslicemirroring-
controller): the Endpoints a user keeps for a Service without a selector,
mirrored into EndpointSlices, so clients that read only slices see them too.

    Endpoints / Service / our EndpointSlice event ─► key "ns/name" ─► reconcile:
      mirrored when the Service exists without a selector and the Endpoints
      are not labelled endpointslice.kubernetes.io/skip-mirror=true (the
      Endpoints controller's own are) nor a leader-election record; else our
      slices go
      one slice per (address type, ports): the subsets' addresses (ready) and
      notReadyAddresses (not ready), at most 1000 per slice (more are skipped,
      with a TooManyAddressesToMirror event; addresses that are no IP, with an
      InvalidIPAddress event); the Endpoints' labels and annotations, labels
      service-name=<name>, managed-by=endpointslicemirroring-controller.k8s.io;
      owned by the Endpoints. The first existing slice of a key is updated, the
      rest deleted
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field

from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, split_key
from corral.controllers.endpointslice.controller import write_plan
from corral.controllers.endpointslice.plan import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SKIP_MIRROR_LABEL,
    Plan,
    PortsKey,
    managed_slices,
    ports_key,
)
from corral.controllers.informers import NAMESPACE, SharedInformers
from corral.objects import Obj, is_deleting, meta, name_of, namespace_of, spec, uid_of

MIRRORING_CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MAX_ENDPOINTS_PER_SUBSET = 1000  # kube-controller-manager's --mirroring-max-endpoints-per-subset
# Annotations of the Endpoints not carried over to its slices.
_NOT_MIRRORED = ("endpoints.kubernetes.io/last-change-trigger-time",
                 "kubectl.kubernetes.io/last-applied-configuration")

Key = tuple[str, PortsKey]  # address type, ports


@dataclass
class Mirror:
    """What an Endpoints object becomes: slices by key, and what was skipped."""

    slices: dict[Key, Obj] = field(default_factory=dict)
    invalid: int = 0
    over_capacity: int = 0


def should_mirror(endpoints: Obj | None, service: Obj | None) -> bool:
    if endpoints is None or service is None or spec(service).get("selector"):
        return False
    labels = meta(endpoints).get("labels") or {}
    annotations = meta(endpoints).get("annotations") or {}
    return labels.get(SKIP_MIRROR_LABEL) != "true" and LEADER_ANNOTATION not in annotations


def _slice(endpoints: Obj, address_type: str, ports: list[Obj]) -> Obj:
    annotations = {k: v for k, v in (meta(endpoints).get("annotations") or {}).items()
                   if k not in _NOT_MIRRORED}
    labels = {**(meta(endpoints).get("labels") or {}), SERVICE_NAME_LABEL: name_of(endpoints),
              MANAGED_BY_LABEL: MIRRORING_CONTROLLER_NAME}
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": f"{name_of(endpoints)}-",
                     "namespace": namespace_of(endpoints), "labels": labels,
                     "annotations": annotations,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints",
                                          "name": name_of(endpoints), "uid": uid_of(endpoints),
                                          "controller": True, "blockOwnerDeletion": True}]},
        "addressType": address_type, "endpoints": [], "ports": ports,
    }


def _endpoint(address: Obj, ready: bool) -> tuple[str, Obj] | None:
    try:
        ip = ipaddress.ip_address(str(address.get("ip", "")))
    except ValueError:
        return None
    endpoint: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
    for name in ("targetRef", "nodeName", "hostname"):
        if address.get(name):
            endpoint[name] = copy.deepcopy(address[name])
    return ("IPv4" if ip.version == 4 else "IPv6"), endpoint


def mirror(endpoints: Obj, limit: int = MAX_ENDPOINTS_PER_SUBSET) -> Mirror:
    out = Mirror()
    for subset in endpoints.get("subsets") or []:
        ports = [{"name": str(p.get("name") or ""), "port": p.get("port"),
                  "protocol": str(p.get("protocol") or "TCP"),
                  **({"appProtocol": p["appProtocol"]} if p.get("appProtocol") else {})}
                 for p in subset.get("ports") or []]
        addresses = [(a, True) for a in subset.get("addresses") or []] + \
                    [(a, False) for a in subset.get("notReadyAddresses") or []]
        added = 0
        for address, ready in addresses:
            if added >= limit:
                out.over_capacity += 1
                continue
            converted = _endpoint(address, ready)
            if converted is None:
                out.invalid += 1
                continue
            address_type, endpoint = converted
            key = (address_type, ports_key(ports))
            out.slices.setdefault(key, _slice(endpoints, address_type, ports))
            out.slices[key]["endpoints"].append(endpoint)
            added += 1
    return out


def plan_mirror(desired: dict[Key, Obj], existing: list[Obj]) -> Plan:
    plan = Plan()
    by_key: dict[Key, list[Obj]] = {}
    for eps in sorted(existing, key=name_of):
        by_key.setdefault((str(eps.get("addressType")), ports_key(eps.get("ports") or [])),
                          []).append(eps)
    for key, slices in by_key.items():
        if key not in desired:
            plan.delete.extend(slices)
    for key, want in desired.items():
        have = by_key.get(key, [])
        plan.delete.extend(have[1:])
        if not have:
            plan.create.append(want)
        elif _differs(have[0], want):
            updated = copy.deepcopy(want)
            wanted = want["metadata"]
            updated["metadata"] = {**copy.deepcopy(meta(have[0])), "labels": wanted["labels"],
                                   "annotations": wanted["annotations"],
                                   "ownerReferences": wanted["ownerReferences"]}
            updated["metadata"].pop("generateName", None)
            plan.update.append(updated)
    return plan


def _differs(have: Obj, want: Obj) -> bool:
    mine, theirs = meta(want), meta(have)
    return bool((have.get("endpoints") or []) != want["endpoints"]
                or (have.get("ports") or []) != want["ports"]
                or (theirs.get("labels") or {}) != mine["labels"]
                or (theirs.get("annotations") or {}) != mine["annotations"]
                or theirs.get("ownerReferences") != mine["ownerReferences"])


class EndpointSliceMirroringController(Controller):
    name = "endpointslice-mirroring-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 1) -> None:
        super().__init__(client, informers, recorder, workers=workers)
        self.endpoints = informers.get("Endpoints")
        self.services = informers.get("Service")
        self.slices = informers.get("EndpointSlice")
        for informer in (self.endpoints, self.services):
            informer.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.slices.add_handler(self._slice_changed, lambda old, new: self._slice_changed(new),
                                self._slice_changed)

    def _slice_changed(self, eps: Obj) -> None:
        labels = meta(eps).get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) == MIRRORING_CONTROLLER_NAME \
                and labels.get(SERVICE_NAME_LABEL):
            self.enqueue_key(f"{namespace_of(eps)}/{labels[SERVICE_NAME_LABEL]}")

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        namespace = namespace or "default"
        endpoints = self.endpoints.get_by_key(key)
        existing = managed_slices(self.slices.by_index(NAMESPACE, namespace), name,
                                  MIRRORING_CONTROLLER_NAME)
        if endpoints is None or not should_mirror(endpoints, self.services.get_by_key(key)):
            await write_plan(self.client, Plan(delete=existing), create=False)
            return
        mirrored = mirror(endpoints)
        if mirrored.invalid:
            self.emit(endpoints, "Warning", "InvalidIPAddress",
                      f"Skipped {mirrored.invalid} invalid IP addresses when mirroring to "
                      "EndpointSlices")
        if mirrored.over_capacity:
            self.emit(endpoints, "Warning", "TooManyAddressesToMirror",
                      f"A max of {MAX_ENDPOINTS_PER_SUBSET} addresses can be mirrored to "
                      f"EndpointSlices per Endpoints subset. {mirrored.over_capacity} "
                      "addresses were skipped")
        await write_plan(self.client, plan_mirror(mirrored.slices, existing),
                         create=not is_deleting(endpoints))

