"""Kubernetes protobuf request bodies: real bodies kubectl 1.32 sent, and the
rules of the JSON mapping (zero values, Time, IntOrString, inlined structs),
malformed input and fields or kinds corral does not decode."""

from __future__ import annotations

from typing import Any

import pytest

from corral.api.errors import BadRequest, UnsupportedMediaType
from corral.api.protobuf import decode_protobuf
from corral.api.protobuf.codec import MAGIC, _message_class

# `kubectl create deployment web --image=nginx --replicas=0 --port=8080 --
#  python3 -m http.server`, as kubectl 1.32 POSTed it.
KUBECTL_DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412d4010a1f0a0377656212001a0022002a"
    "003200380042005a0a0a03617070120377656212a2010800120c0a0a0a0361707012037765621a87010a1c0a"
    "0012001a0022002a003200380042005a0a0a036170701203776562126712490a056e67696e7812056e67696e"
    "781a07707974686f6e331a022d6d1a0b687474702e7365727665722a00320b0a00100018903f22002a004200"
    "6a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c20100"
    "22020a00280038001a0c0800100018002000280038001a002200")
# `kubectl create service nodeport np --tcp=80:http`
KUBECTL_SERVICE = bytes.fromhex(
    "6b3873000a0d0a02763112075365727669636512680a1d0a026e7012001a0022002a003200380042005a090a"
    "0361707012026e7012430a1e0a0738302d6874747012035443501850220a080110001a046874747028001209"
    "0a0361707012026e701a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200")


def test_kubectl_create_deployment() -> None:
    assert decode_protobuf(KUBECTL_DEPLOYMENT) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,  # a pointer in Go: an explicit zero stays
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                "name": "nginx", "image": "nginx", "command": ["python3", "-m", "http.server"],
                "ports": [{"containerPort": 8080}], "resources": {}}]}},
            "strategy": {},
        },
    }


def test_kubectl_create_service_with_a_named_target_port() -> None:
    assert decode_protobuf(KUBECTL_SERVICE) == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "np", "labels": {"app": "np"}},
        "spec": {"ports": [{"name": "80-http", "protocol": "TCP", "port": 80,
                            "targetPort": "http"}],
                 "selector": {"app": "np"}, "type": "NodePort"},
    }


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    unknown: Any = _message_class("Unknown")()
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind = api_version, kind
    unknown.raw = raw
    return MAGIC + unknown.SerializeToString()


def _encode(name: str, fill: Any) -> bytes:
    message = _message_class(name)()
    fill(message)
    return message.SerializeToString()


def test_secret_time_and_inlined_key_selectors() -> None:
    def secret(m: Any) -> None:
        m.metadata.name = "s"
        m.metadata.creationTimestamp.seconds = 1_700_000_000
        m.metadata.deletionGracePeriodSeconds = 0
        m.data["pw"] = b"\x00\xffhi"
        m.type = "Opaque"
        m.immutable = False
    assert decode_protobuf(_envelope("v1", "Secret", _encode("Secret", secret))) == {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "creationTimestamp": "2023-11-14T22:13:20Z",
                     "deletionGracePeriodSeconds": 0},
        "data": {"pw": "AP9oaQ=="}, "type": "Opaque", "immutable": False}

    def job(m: Any) -> None:
        m.metadata.name = "j"
        m.metadata.creationTimestamp.SetInParent()  # the zero time: an empty message
        container = m.spec.template.spec.containers.add(name="c", image="i")
        env = container.env.add(name="PW")
        env.valueFrom.secretKeyRef.ref.name = "s"
        env.valueFrom.secretKeyRef.key = "pw"
        container.livenessProbe.handler.httpGet.port.intVal = 8080
        container.livenessProbe.periodSeconds = 3
        m.spec.backoffLimit = 0
        m.spec.template.spec.restartPolicy = "Never"
    decoded = decode_protobuf(_envelope("batch/v1", "Job", _encode("Job", job)))
    assert decoded["metadata"] == {"name": "j"}
    assert decoded["spec"]["backoffLimit"] == 0
    c = decoded["spec"]["template"]["spec"]["containers"][0]
    assert c["env"] == [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s",
                                                                      "key": "pw"}}}]
    assert c["livenessProbe"] == {"httpGet": {"port": 8080}, "periodSeconds": 3}


def test_delete_options_of_any_group_version() -> None:
    def opts(m: Any) -> None:
        m.gracePeriodSeconds = 0
        m.propagationPolicy = "Background"
        m.preconditions.uid = "u-1"
    body = _envelope("v1", "DeleteOptions", _encode("DeleteOptions", opts))
    assert decode_protobuf(body) == {
        "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
        "propagationPolicy": "Background", "preconditions": {"uid": "u-1"}}


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field written by hand (payloads here are < 128 bytes)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


def _quantities(number: int, amounts: dict[str, str]) -> bytes:
    # A map<string, Quantity>: one entry message per key; Quantity's string is field 1.
    return b"".join(_field(number, _field(1, k.encode()) + _field(2, _field(1, v.encode())))
                    for k, v in amounts.items())


def test_limit_range_with_generated_proto_field_numbers() -> None:
    # LimitRangeItem: type=1 max=2 min=3 default=4 defaultRequest=5 maxLimitRequestRatio=6.
    item = (_field(1, b"Container") + _quantities(2, {"cpu": "2"})
            + _quantities(3, {"cpu": "100m"}) + _quantities(4, {"memory": "512Mi"})
            + _quantities(5, {"memory": "256Mi"}) + _quantities(6, {"cpu": "4"}))
    limit_range = _field(1, _field(1, b"lr")) + _field(2, _field(1, item))
    assert decode_protobuf(_envelope("v1", "LimitRange", limit_range)) == {
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"},
                             "default": {"memory": "512Mi"},
                             "defaultRequest": {"memory": "256Mi"},
                             "maxLimitRequestRatio": {"cpu": "4"}}]}}


def test_kinds_corral_does_not_decode_are_415() -> None:
    with pytest.raises(UnsupportedMediaType,
                       match="kind Ingress .networking.k8s.io/v1.*application/json"):
        decode_protobuf(_envelope("networking.k8s.io/v1", "Ingress", b""))


def test_a_field_not_in_the_schema_is_refused_not_dropped() -> None:
    # Container.securityContext (15) is not decoded: the body must not lose it.
    container = bytes([0x0A, 0x01]) + b"c" + bytes([0x7A, 0x02, 0x10, 0x01])
    pod_spec = bytes([0x12, len(container)]) + container
    pod = bytes([0x12, len(pod_spec)]) + pod_spec
    with pytest.raises(UnsupportedMediaType,
                       match=r"field 15 of Container \(at Pod.spec.containers\[0\]\)"):
        decode_protobuf(_envelope("v1", "Pod", pod))


@pytest.mark.parametrize("body", [
    b"\x00\x01\x02\x03",  # no magic
    MAGIC + b"\x0a\x50\x0a",  # a length past the end
    KUBECTL_DEPLOYMENT[:-7],  # truncated inside the object
])
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_protobuf(body)


def test_endpoint_slice_with_generated_proto_field_numbers() -> None:
    # EndpointSlice: metadata=1 endpoints=2 ports=3 addressType=4; Endpoint:
    # addresses=1 conditions=2 hostname=3 targetRef=4 nodeName=6 zone=7;
    # EndpointConditions ready=1 serving=2 terminating=3 (pointers: false is kept);
    # EndpointPort name=1 protocol=2 port=3 appProtocol=4.
    conditions = bytes([1 << 3, 1, 2 << 3, 1, 3 << 3, 0])
    endpoint = (_field(1, b"10.0.0.7") + _field(2, conditions) + _field(3, b"web-0")
                + _field(4, _field(1, b"Pod") + _field(3, b"web-0")) + _field(6, b"n1")
                + _field(7, b"z1"))
    port = _field(1, b"http") + _field(2, b"TCP") + bytes([3 << 3, 0x90, 0x3F])  # 8080
    eps = _field(1, _field(1, b"web-x")) + _field(2, endpoint) + _field(3, port) \
        + _field(4, b"IPv4")
    assert decode_protobuf(_envelope("discovery.k8s.io/v1", "EndpointSlice", eps)) == {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-x"}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.7"],
                       "conditions": {"ready": True, "serving": True, "terminating": False},
                       "hostname": "web-0", "targetRef": {"kind": "Pod", "name": "web-0"},
                       "nodeName": "n1", "zone": "z1"}],
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}
