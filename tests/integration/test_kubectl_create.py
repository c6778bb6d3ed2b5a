"""`kubectl create <generator>` sends protobuf bodies; corral decodes them.
Kinds corral does not serve fail as they do with JSON (404 on the path), and
drain's fallback DELETE carries a protobuf DeleteOptions."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import Master
from tests.kubectl import Kubectl

NS = "gen"


@pytest.fixture(scope="module")
def kubectl(master: Master, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    run = Kubectl(master, tmp_path_factory.mktemp("kubecache"))
    run("create", "namespace", NS)
    yield run


def _get(kubectl: Kubectl, *what: str) -> Any:
    return json.loads(kubectl("get", *what, "-n", NS, "-o", "json"))


def test_create_namespace(kubectl: Kubectl) -> None:
    ns = json.loads(kubectl("get", "namespace", NS, "-o", "json"))
    assert ns["status"]["phase"] == "Active" and ns["metadata"]["uid"]
    # Kubernetes labels a namespace with its name, and keeps the label so
    selected = kubectl("get", "namespaces", "-l", f"kubernetes.io/metadata.name={NS}", "-o",
                       "name")
    assert selected.split() == [f"namespace/{NS}"]
    kubectl("label", "namespace", NS, "kubernetes.io/metadata.name=other", "--overwrite")
    ns = json.loads(kubectl("get", "namespace", NS, "-o", "json"))
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == NS


def test_create_deployment(kubectl: Kubectl) -> None:
    out = kubectl("create", "deployment", "web", "-n", NS, "--image=nginx", "--replicas=0",
                  "--port=8080", "--", "python3", "-m", "http.server")
    assert out.strip() == "deployment.apps/web created"
    d = _get(kubectl, "deployment", "web")
    assert d["spec"]["replicas"] == 0
    assert d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert (c["name"], c["image"]) == ("nginx", "nginx")
    assert c["command"] == ["python3", "-m", "http.server"]
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]


def test_create_configmap_and_secrets(kubectl: Kubectl) -> None:
    kubectl("create", "configmap", "settings", "-n", NS, "--from-literal=level=3",
            "--from-literal=mode=fast")
    assert _get(kubectl, "configmap", "settings")["data"] == {"level": "3", "mode": "fast"}
    kubectl("create", "secret", "generic", "pw", "-n", NS, "--from-literal=pw=hunter2")
    secret = _get(kubectl, "secret", "pw")
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["pw"]) == b"hunter2"
    kubectl("create", "secret", "docker-registry", "reg", "-n", NS, "--docker-username=u",
            "--docker-password=p", "--docker-server=registry.test")
    reg = _get(kubectl, "secret", "reg")
    assert reg["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(reg["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.test"]["username"] == "u"


def test_create_job_service_quota_priorityclass(kubectl: Kubectl) -> None:
    kubectl("create", "job", "once", "-n", NS, "--image=busybox", "--", "echo", "hi")
    job = _get(kubectl, "job", "once")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    kubectl("create", "service", "nodeport", "np", "-n", NS, "--tcp=80:http")
    svc = _get(kubectl, "service", "np")
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert svc["spec"]["ports"][0]["nodePort"] > 0
    kubectl("create", "quota", "q", "-n", NS, "--hard=pods=10,cpu=2")
    assert _get(kubectl, "quota", "q")["spec"]["hard"] == {"pods": "10", "cpu": "2"}
    kubectl("create", "priorityclass", "gen-low", "--value=0", "--description=low")
    pc = json.loads(kubectl("get", "priorityclass", "gen-low", "-o", "json"))
    assert (pc["value"], pc["description"]) == (0, "low")


def test_create_pdb(kubectl: Kubectl) -> None:
    kubectl("create", "pdb", "keep", "-n", NS, "--selector=app=web", "--min-available=50%")
    kubectl("create", "pdb", "spare", "-n", NS, "--selector=app=web", "--max-unavailable=1")
    keep, spare = _get(kubectl, "pdb", "keep")["spec"], _get(kubectl, "pdb", "spare")["spec"]
    assert keep["minAvailable"] == "50%" and keep["selector"] == {"matchLabels": {"app": "web"}}
    assert spare["maxUnavailable"] == 1 and "minAvailable" not in spare


def test_create_cronjob(kubectl: Kubectl) -> None:
    kubectl("create", "cronjob", "nightly", "-n", NS, "--image=busybox",
            "--schedule=0 3 * * *", "--", "echo", "hi")
    cj = _get(kubectl, "cronjob", "nightly")
    assert cj["spec"]["schedule"] == "0 3 * * *"
    pod_spec = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["command"] == ["echo", "hi"]
    assert pod_spec["restartPolicy"] == "OnFailure"


@pytest.mark.parametrize("args", [
    ("ingress", "web", "--rule=example.com/=web:80"),
])
def test_kinds_corral_does_not_serve_fail_as_with_json(kubectl: Kubectl,
                                                        args: tuple[str, ...]) -> None:
    proto = kubectl.run("create", "-n", NS, *args)
    assert proto.returncode != 0
    assert "the server could not find the requested resource" in proto.stderr
    manifest = kubectl("create", "-n", NS, "--dry-run=client", "-o", "json", *args)
    as_json = kubectl.run("create", "-f", "-", input=manifest)
    assert as_json.returncode != 0
    assert "the server could not find the requested resource" in as_json.stderr \
        or "no matches for kind" in as_json.stderr


def test_drain_deletes_with_a_protobuf_body(kubectl: Kubectl, master: Master) -> None:
    """`drain --disable-eviction` DELETEs each pod with protobuf DeleteOptions."""
    with master.http() as api:
        r = api.post("/api/v1/nodes", json={"metadata": {"name": "gen-node"}})
        assert r.status_code == 201, r.text
        pod = {"metadata": {"name": "bound"},
               "spec": {"nodeName": "gen-node",
                        "containers": [{"name": "c", "image": "i", "command": ["true"]}]}}
        r = api.post("/api/v1/namespaces/default/pods", json=pod)  # NS has a quota
        assert r.status_code == 201, r.text
    out = kubectl.run("drain", "gen-node", "--disable-eviction", "--force",
                      "--grace-period=0", "--timeout=30s")
    assert out.returncode == 0, out.stderr
    assert "pod/bound deleted" in out.stdout + out.stderr
    assert "pod/bound" not in kubectl("get", "pods", "-n", "default", "-o", "name")
