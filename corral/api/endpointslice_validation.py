"""Validation of discovery.k8s.io/v1 EndpointSlices, with the limits and
wording of Kubernetes' pkg/apis/discovery/validation.

    addressType   required; IPv4, IPv6 or FQDN; immutable
    endpoints     at most 1000; each 1..100 addresses valid for the addressType,
                  a DNS-label hostname, a valid nodeName, at most 8 zone hints
                  (unique label values); deprecatedTopology is dropped on write
                  (defaults.py), as v1 does
    ports         at most 20000 (Kubernetes raised it from 100 in 1.21); names
                  unique DNS labels (or ""); protocol TCP/UDP/SCTP; appProtocol
                  a qualified name
"""

from __future__ import annotations

import ipaddress

from corral.api import names
from corral.api.field_errors import FieldErrors
from corral.api.kinds.discovery import Endpoint, EndpointHints, EndpointPort, EndpointSlice
from corral.api.pod_validation import PROTOCOLS

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000
MAX_ZONE_HINTS = 8


def validate_endpoint_slice(eps: EndpointSlice, old: EndpointSlice | None,
                            errs: FieldErrors) -> None:
    if not eps.address_type:
        errs.required("addressType")
    else:
        errs.one_of("addressType", eps.address_type, ADDRESS_TYPES)
    if old is not None:
        errs.immutable("addressType", eps.address_type, old.address_type)
    _validate_endpoints(eps.endpoints, eps.address_type or "", errs)
    _validate_ports(eps.ports or [], errs)


def _validate_endpoints(endpoints: list[Endpoint], address_type: str, errs: FieldErrors) -> None:
    if len(endpoints) > MAX_ENDPOINTS:
        errs.too_many("endpoints", len(endpoints), MAX_ENDPOINTS)
        return
    for i, endpoint in enumerate(endpoints):
        path = f"endpoints[{i}]"
        if not endpoint.addresses:
            errs.required(f"{path}.addresses", "must contain at least 1 address")
        elif len(endpoint.addresses) > MAX_ADDRESSES:
            errs.too_many(f"{path}.addresses", len(endpoint.addresses), MAX_ADDRESSES)
        for j, address in enumerate(endpoint.addresses):
            errs.each(f"{path}.addresses[{j}]", address, address_problems(address, address_type))
        if endpoint.node_name is not None:
            errs.each(f"{path}.nodeName", endpoint.node_name,
                      names.dns1123_subdomain(endpoint.node_name))
        if endpoint.hostname is not None:
            errs.each(f"{path}.hostname", endpoint.hostname,
                      names.dns1123_label(endpoint.hostname))
        if endpoint.hints is not None:
            _validate_hints(endpoint.hints, f"{path}.hints", errs)


def address_problems(address: str, address_type: str) -> list[str]:
    """What is wrong with one address of a slice of ``address_type`` (an
    unknown type is reported on addressType, its addresses are not judged)."""
    if address_type == "FQDN":
        return _fqdn_problems(address)
    if address_type not in ("IPv4", "IPv6"):
        return []
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if ip is None or (ip.version == 4) != (address_type == "IPv4"):
        return [f"must be a valid {address_type} address"]
    return _special_ip_problems(ip)


def _special_ip_problems(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    # Kubernetes also refuses loopback addresses here; corral's nodes are
    # loopback addresses on one machine (127.0.1.N, DESIGN.md), so its pods'
    # addresses are too, and those must be publishable.
    if ip.is_unspecified:
        return [f"may not be unspecified ({ip})"]
    link_local_multicast = (ipaddress.ip_network("224.0.0.0/24") if ip.version == 4
                            else ipaddress.ip_network("ff02::/16"))
    if ip in link_local_multicast:
        return ["may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"]
    if ip.is_link_local:
        return ["may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
    return []


def _fqdn_problems(address: str) -> list[str]:
    name = address.removesuffix(".")
    problems = names.dns1123_subdomain(name)
    if "." not in name:
        problems.append("should be a domain with at least two segments separated by dots")
    return problems


def _validate_hints(hints: EndpointHints, path: str, errs: FieldErrors) -> None:
    zones = hints.for_zones or []
    if len(zones) > MAX_ZONE_HINTS:
        errs.too_many(f"{path}.forZones", len(zones), MAX_ZONE_HINTS)
        return
    seen: set[str] = set()
    for i, zone in enumerate(zones):
        where = f"{path}.forZones[{i}].name"
        if zone.name in seen:
            errs.duplicate(where, zone.name)
        seen.add(zone.name)
        errs.each(where, zone.name, names.label_value(zone.name))


def _validate_ports(ports: list[EndpointPort], errs: FieldErrors) -> None:
    if len(ports) > MAX_PORTS:
        errs.too_many("ports", len(ports), MAX_PORTS)
        return
    seen: set[str] = set()
    for i, port in enumerate(ports):
        path = f"ports[{i}]"
        name = port.name or ""
        if name:
            errs.each(f"{path}.name", name, names.dns1123_label(name))
        if name in seen:
            errs.duplicate(f"{path}.name", name)
        seen.add(name)
        if port.protocol is None:
            errs.required(f"{path}.protocol")
        else:
            errs.one_of(f"{path}.protocol", port.protocol, PROTOCOLS)
        if port.app_protocol is not None:
            errs.each(f"{path}.appProtocol", port.app_protocol,
                      names.qualified_name(port.app_protocol))
