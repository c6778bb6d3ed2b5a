"""What a container sees: downward API, ConfigMap and Secret values, $(VAR)
expansion, its host ports; and the ports published in status.portMappings."""

from __future__ import annotations

import base64

import httpx

from tests.cluster import Agent
from tests.integration.agent_api.conftest import (
    condition,
    container_status,
    create_pod,
    make_pod,
    phase,
    wait_pod,
)

LOG = "/api/v1/namespaces/default/pods/{}/log"


def test_env_downward_api_refs_and_expansion(node: Agent, http: httpx.Client) -> None:
    http.post("/api/v1/namespaces/default/configmaps", json={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "env-cm"},
        "data": {"color": "blue", "size": "9"}})
    http.post("/api/v1/namespaces/default/secrets", json={
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "env-secret"},
        "data": {"password": base64.b64encode(b"s3cret").decode()}})
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "color"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "env-secret",
                                                            "key": "password"}}},
        {"name": "GREETING", "value": "hi $(POD_NAME) on $(NODE), $$(POD_NAME) $(UNSET)"},
    ]
    script = ('echo "$POD_NAME|$POD_NS|$POD_UID|$NODE|$POD_IP|$HOST_IP|$COLOR|$PASSWORD";'
              ' echo "$GREETING"; echo "$1"; echo "size=$size"')
    pod = make_pod("envy", node.name, ["sh", "-c", script, "sh", "$(COLOR)-$(PORT)"], env=env,
                   envFrom=[{"configMapRef": {"name": "env-cm"}}],
                   ports=[{"containerPort": 8080, "name": "http"}])
    uid = create_pod(http, pod)["metadata"]["uid"]
    done = wait_pod(http, "envy", lambda p: phase(p) == "Succeeded")
    (mapping,) = done["status"]["portMappings"]
    port = mapping["hostPort"]
    lines = http.get(LOG.format("envy")).text.splitlines()
    ip = node.node_ip
    assert lines[0] == f"envy|default|{uid}|{node.name}|{ip}|{ip}|blue|s3cret"
    assert lines[1] == f"hi envy on {node.name}, $(POD_NAME) $(UNSET)"
    assert lines[2] == f"blue-{port}"
    assert lines[3] == "size=9"


def test_missing_config_map_waits_with_a_reason(node: Agent, http: httpx.Client) -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "k"}}}]
    create_pod(http, make_pod("waits", node.name, ["sh", "-c", "echo $X"], env=env))
    pod = wait_pod(http, "waits", lambda p: (container_status(p).get("state", {})
                                             .get("waiting", {}).get("reason")
                                             == "CreateContainerConfigError"))
    assert 'configmap "later" not found' in container_status(pod)["state"]["waiting"]["message"]
    http.post("/api/v1/namespaces/default/configmaps", json={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"},
        "data": {"k": "now"}})
    wait_pod(http, "waits", lambda p: phase(p) == "Succeeded")
    assert http.get(LOG.format("waits")).text == "now\n"


def test_ports_are_allocated_served_and_probed(node: Agent, http: httpx.Client) -> None:
    server = ["python3", "-m", "http.server", "$(PORT_WEB)", "--bind", "$(POD_IP)"]
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    probe = {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 1}
    pod = make_pod("web", node.name, server, restart="Always", env=env,
                   ports=[{"containerPort": 80, "name": "web"},
                          {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
                   readinessProbe=probe)
    create_pod(http, pod)
    ready = wait_pod(http, "web", lambda p: condition(p, "Ready") == "True")
    mappings = {m["name"]: m for m in ready["status"]["portMappings"]}
    assert set(mappings) == {"web", "metrics"}
    web = mappings["web"]
    assert web["containerName"] == "main" and web["containerPort"] == 80
    assert web["hostIP"] == node.node_ip and web["protocol"] == "TCP"
    assert web["hostPort"] != mappings["metrics"]["hostPort"]
    assert httpx.get(f"http://{node.node_ip}:{web['hostPort']}/").status_code == 200
    http.delete("/api/v1/namespaces/default/pods/web")
