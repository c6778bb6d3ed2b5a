"""Tables of the service side: services and their endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, age_of, name_of
from corral.api.tables.selectors import NONE, format_labels
from corral.objects import status

SERVICE_COLUMNS = (
    NAME,
    Column("Type", "type determines how the Service is exposed."),
    Column("Cluster-IP", "clusterIP is the IP address of the service."),
    Column("External-IP", "externalIPs is a list of IP addresses for which nodes in the "
           "cluster will also accept traffic for this service."),
    Column("Port(s)", "The list of ports that are exposed by this service."),
    AGE,
    Column("Selector", "Route service traffic to pods with label keys and values matching "
           "this selector.", priority=1),
)


def service_cells(svc: Object, now: datetime) -> list[Cell]:
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
    return [
        name_of(svc), spec.get("type") or "ClusterIP", cluster_ips[0] or NONE,
        _external_ip(svc), format_ports(spec.get("ports") or []) or NONE,
        age_of(svc, now), format_labels(spec.get("selector")),
    ]


def format_ports(ports: list[dict[str, Any]]) -> str:
    """"80/TCP", or "80:30080/TCP" when the port has a node port."""
    pieces = []
    for port in ports:
        protocol = port.get("protocol") or "TCP"
        if port.get("nodePort"):
            pieces.append(f"{port.get('port')}:{port['nodePort']}/{protocol}")
        else:
            pieces.append(f"{port.get('port')}/{protocol}")
    return ",".join(pieces)


def _external_ip(svc: Object) -> str:
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    external = list(spec.get("externalIPs") or [])
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if kind == "LoadBalancer":
        ingress = (status(svc).get("loadBalancer") or {}).get("ingress") or []
        addresses = [i.get("ip") or i.get("hostname") or "" for i in ingress]
        return ",".join(a for a in addresses + external if a) or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


ENDPOINTS_COLUMNS = (
    NAME,
    Column("Endpoints", "The set of all endpoints is the union of all subsets."),
    AGE,
)

_SHOWN_ENDPOINTS = 3


def endpoints_cells(ep: Object, now: datetime) -> list[Cell]:
    return [name_of(ep), format_endpoints(ep.get("subsets") or []), age_of(ep, now)]


def format_endpoints(subsets: list[dict[str, Any]]) -> str:
    """Ready addresses as "ip:port", the first three and "+ N more..."."""
    if not subsets:
        return NONE
    shown: list[str] = []
    count = 0
    for subset in subsets:
        ips = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        # A headless service may have no ports: its addresses are listed bare.
        targets = [ip for ip in ips] if not ports else [
            _host_port(ip, p.get("port")) for p in ports for ip in ips]
        count += len(targets)
        shown.extend(targets[:max(0, _SHOWN_ENDPOINTS - len(shown))])
    text = ",".join(shown)
    if count > _SHOWN_ENDPOINTS:
        return f"{text} + {count - _SHOWN_ENDPOINTS} more..."
    return text


def _host_port(ip: str, port: object) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


SERVICES = Printer(SERVICE_COLUMNS, service_cells)
ENDPOINTS = Printer(ENDPOINTS_COLUMNS, endpoints_cells)


ENDPOINT_SLICE_COLUMNS = (
    NAME,
    Column("AddressType", "addressType specifies the type of address carried by this "
           "EndpointSlice. All addresses in this slice must be the same type."),
    Column("Ports", "ports specifies the list of network ports exposed by each endpoint in "
           "this slice."),
    Column("Endpoints", "endpoints is a list of unique endpoints in this slice."),
    AGE,
)


def endpoint_slice_cells(eps: Object, now: datetime) -> list[Cell]:
    ports = [str(p["port"]) if p.get("port") is not None else str(p.get("name", "*"))
             for p in eps.get("ports") or []]
    addresses = [a for e in eps.get("endpoints") or [] for a in e.get("addresses") or []]
    return [name_of(eps), str(eps.get("addressType", "")), _first_three(ports),
            _first_three(addresses), age_of(eps, now)]


def _first_three(items: list[str]) -> str:
    """kube-apiserver's listing of a slice's ports or addresses: the first
    three, "+ N more...", or <unset> for none."""
    if len(items) > _SHOWN_ENDPOINTS:
        shown = ",".join(items[:_SHOWN_ENDPOINTS])
        return f"{shown} + {len(items) - _SHOWN_ENDPOINTS} more..."
    return ",".join(items) or "<unset>"


ENDPOINT_SLICES = Printer(ENDPOINT_SLICE_COLUMNS, endpoint_slice_cells)
