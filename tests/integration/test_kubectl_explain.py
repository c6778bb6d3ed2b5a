"""`kubectl explain` against a real master, through OpenAPI v3 (the default) and
v2 (protobuf, as client-go reads it), and /openapi/v2 in JSON for other clients."""

from __future__ import annotations

from typing import Any

import pytest

from corral.api.openapi_v2 import GNOSTIC, PROTOBUF_V2
from tests.cluster import Master
from tests.kubectl import Kubectl


@pytest.mark.parametrize("output", ["plaintext", "plaintext-openapiv2"])
def test_explain_prints_descriptions(kubectl: Kubectl, output: str) -> None:
    field = kubectl("explain", "deployments.spec.replicas", f"--output={output}")
    assert "How many pods. Defaults to 1." in field
    kind = kubectl("explain", "pods", f"--output={output}")
    assert "A group of containers scheduled together onto one node" in kind
    assert "<no description>" not in kubectl("explain", "services.spec", f"--output={output}")
    rule = kubectl("explain", "jobs.spec.podFailurePolicy.rules", f"--output={output}")
    assert "onExitCodes" in rule and "<no description>" not in rule
    conditions = kubectl("explain", "endpointslices.endpoints.conditions", f"--output={output}")
    assert "terminating" in conditions and "<no description>" not in conditions


def test_openapi_v2_in_json_and_protobuf(master: Master) -> None:
    with master.http() as api:
        doc = api.get("/openapi/v2").json()
        assert doc["swagger"] == "2.0"
        deployment = doc["definitions"]["io.k8s.api.apps.v1.Deployment"]
        assert deployment["properties"]["spec"]["$ref"] == \
            "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
        assert deployment["x-kubernetes-group-version-kind"] == [
            {"group": "apps", "version": "v1", "kind": "Deployment"}]
        port = doc["definitions"]["io.k8s.api.core.v1.ServicePort"]["properties"]
        assert port["targetPort"]["format"] == "int-or-string"
        r = api.get("/openapi/v2", headers={"Accept": PROTOBUF_V2})
        assert r.headers["content-type"] == PROTOBUF_V2
    parsed: Any = GNOSTIC.message_class("Document").FromString(r.content)
    names = [d.name for d in parsed.definitions.additionalProperties]
    assert sorted(names) == sorted(doc["definitions"])
