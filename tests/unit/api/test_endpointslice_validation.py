"""EndpointSlice validation: Kubernetes' limits and field errors, each on the
field at fault; defaults (port name "", protocol TCP) filled in first."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from corral.api import kinds
from corral.api.defaults import apply_defaults
from corral.api.endpointslice_validation import MAX_ADDRESSES, MAX_ENDPOINTS, MAX_PORTS
from corral.api.errors import Cause, Invalid
from corral.api.validation import validate

Body = dict[str, Any]

BASE: Body = {
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "web-abcde", "namespace": "default"},
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["127.0.1.2"], "conditions": {"ready": True}}],
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
}


def _check(body: Body, old: Body | None = None) -> list[Cause]:
    obj = kinds.decode("EndpointSlice", body)
    apply_defaults(obj)
    return validate(obj, kinds.decode("EndpointSlice", old) if old is not None else None)


def _with(**fields: Any) -> Body:
    body = copy.deepcopy(BASE)
    body.update(fields)
    return body


def _endpoint(*addresses: str, **fields: Any) -> Body:
    return {"addresses": list(addresses), **fields}


def _only(causes: list[Cause]) -> tuple[str, str]:
    assert len(causes) == 1, causes
    return causes[0].field, causes[0].reason


def test_a_valid_slice_and_its_defaults() -> None:
    assert _check(copy.deepcopy(BASE)) == []
    obj = kinds.decode("EndpointSlice", _with(ports=[{"port": 80}]))
    apply_defaults(obj)
    assert kinds.encode(obj)["ports"] == [{"name": "", "protocol": "TCP", "port": 80}]
    # A placeholder: no endpoints, no ports.
    assert _check(_with(endpoints=[], ports=[])) == []


def test_address_type_is_required_supported_and_immutable() -> None:
    body = _with()
    del body["addressType"]
    assert _only(_check(body)) == ("addressType", "FieldValueRequired")
    assert _only(_check(_with(addressType="IP"))) == ("addressType", "FieldValueNotSupported")
    causes = _check(_with(addressType="IPv6", endpoints=[_endpoint("fd00::1")]),
                    old=copy.deepcopy(BASE))
    assert _only(causes) == ("addressType", "FieldValueInvalid")
    assert "field is immutable" in causes[0].message


@pytest.mark.parametrize(("address_type", "address", "message"), [
    ("IPv4", "fd00::1", "must be a valid IPv4 address"),
    ("IPv4", "not-an-ip", "must be a valid IPv4 address"),
    ("IPv6", "10.0.0.1", "must be a valid IPv6 address"),
    ("IPv4", "0.0.0.0", "may not be unspecified"),
    ("IPv4", "169.254.1.1", "link-local range"),
    ("IPv4", "224.0.0.5", "link-local multicast range"),
    ("IPv6", "fe80::1", "link-local range"),
    ("FQDN", "single", "at least two segments"),
    ("FQDN", "Bad_Name.example.com", "RFC 1123 subdomain"),
])
def test_addresses_must_fit_the_address_type(address_type: str, address: str,
                                             message: str) -> None:
    causes = _check(_with(addressType=address_type, endpoints=[_endpoint(address)]))
    assert _only(causes) == ("endpoints[0].addresses[0]", "FieldValueInvalid")
    assert message in causes[0].message


def test_good_addresses_of_each_type() -> None:
    assert _check(_with(endpoints=[_endpoint("127.0.1.7", "10.1.2.3")])) == []
    assert _check(_with(addressType="IPv6", endpoints=[_endpoint("fd00::7")])) == []
    assert _check(_with(addressType="FQDN", endpoints=[_endpoint("db.example.com.")])) == []


def test_endpoint_limits() -> None:
    too_many = [_endpoint("10.0.0.1")] * (MAX_ENDPOINTS + 1)
    causes = _check(_with(endpoints=too_many))
    assert _only(causes) == ("endpoints", "FieldValueTooMany")
    assert causes[0].message == f"Too many: {MAX_ENDPOINTS + 1}: must have at most 1000 items"
    assert _check(_with(endpoints=[_endpoint("10.0.0.1")] * MAX_ENDPOINTS)) == []
    assert _only(_check(_with(endpoints=[_endpoint()]))) == (
        "endpoints[0].addresses", "FieldValueRequired")
    many = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(MAX_ADDRESSES + 1)]
    assert _only(_check(_with(endpoints=[_endpoint(*many)]))) == (
        "endpoints[0].addresses", "FieldValueTooMany")


def test_endpoint_fields() -> None:
    assert _only(_check(_with(endpoints=[_endpoint("10.0.0.1", hostname="Web.0")]))) == (
        "endpoints[0].hostname", "FieldValueInvalid")
    assert _only(_check(_with(endpoints=[_endpoint("10.0.0.1", nodeName="Node_1")]))) == (
        "endpoints[0].nodeName", "FieldValueInvalid")
    zones = {"forZones": [{"name": "a"}, {"name": "a"}]}
    assert _only(_check(_with(endpoints=[_endpoint("10.0.0.1", hints=zones)]))) == (
        "endpoints[0].hints.forZones[1].name", "FieldValueDuplicate")
    nine = {"forZones": [{"name": f"z{i}"} for i in range(9)]}
    assert _only(_check(_with(endpoints=[_endpoint("10.0.0.1", hints=nine)]))) == (
        "endpoints[0].hints.forZones", "FieldValueTooMany")


def test_port_rules() -> None:
    assert _only(_check(_with(ports=[{"name": "Bad_Name", "port": 1}]))) == (
        "ports[0].name", "FieldValueInvalid")
    assert _only(_check(_with(ports=[{"name": "a", "port": 1}, {"name": "a", "port": 2}]))) == (
        "ports[1].name", "FieldValueDuplicate")
    # Two unnamed ports clash too: "" is a name like any other.
    assert _only(_check(_with(ports=[{"port": 1}, {"port": 2}]))) == (
        "ports[1].name", "FieldValueDuplicate")
    assert _only(_check(_with(ports=[{"port": 1, "protocol": "ICMP"}]))) == (
        "ports[0].protocol", "FieldValueNotSupported")
    assert _only(_check(_with(ports=[{"port": 1, "appProtocol": "not valid!"}]))) == (
        "ports[0].appProtocol", "FieldValueInvalid")
    assert _check(_with(ports=[{"port": 1, "appProtocol": "kubernetes.io/h2c"}])) == []
    ports = [{"name": f"p{i}", "port": i} for i in range(MAX_PORTS + 1)]
    assert _only(_check(_with(ports=ports))) == ("ports", "FieldValueTooMany")


def test_wrong_types_are_invalid_not_a_crash() -> None:
    with pytest.raises(Invalid) as raised:
        kinds.decode("EndpointSlice", _with(endpoints=[{"addresses": "10.0.0.1"}]))
    assert [c.field for c in raised.value.causes] == ["endpoints[0].addresses"]
