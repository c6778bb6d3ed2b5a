"""A node's own credential (`corral token create` for system:node:<name> in
system:nodes), through the real `kubernetes` client: it writes its own Node, not
another's; reads only the Secrets its pods reference; writes only its own pods'
status. Tokens are listed without their secrets and stop working when revoked."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.cluster import Master


def _corral(master: Master, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli.main", "token", *args,
                           "--data-dir", str(master.data_dir)],
                          capture_output=True, text=True, timeout=60, check=False)


def _api(master: Master, token: str) -> client.ApiClient:
    cfg = client.Configuration(host=master.url, api_key={"authorization": f"Bearer {token}"})
    cfg.ssl_ca_cert = str(master.ca_path)
    return client.ApiClient(cfg)


@pytest.fixture(scope="module")
def admin(master: Master) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(master.kubeconfig)))


@pytest.fixture(scope="module")
def node_token(master: Master) -> str:
    made = _corral(master, "create", "--user", "system:node:n1", "--group", "system:nodes")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _refused(call: Callable[[], object]) -> str:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 403, err.value.body
    return str(json.loads(err.value.body)["message"])


def _node(name: str) -> client.V1Node:
    return client.V1Node(metadata=client.V1ObjectMeta(name=name))


def _pod(name: str, node: str, secret: str) -> client.V1Pod:
    env = [client.V1EnvVar(name="S", value_from=client.V1EnvVarSource(
        secret_key_ref=client.V1SecretKeySelector(name=secret, key="k")))]
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name), spec=client.V1PodSpec(
        node_name=node, containers=[client.V1Container(name="c", image="busybox", env=env)]))


def test_a_node_writes_only_its_own_node(master: Master, admin: client.CoreV1Api,
                                         node_token: str) -> None:
    as_node = client.CoreV1Api(_api(master, node_token))
    assert as_node.create_node(_node("n1")).metadata.name == "n1"
    assert _refused(lambda: as_node.create_node(_node("n2"))).endswith(
        "node 'n1' cannot modify node 'n2'")
    admin.create_node(_node("n2"))
    assert _refused(lambda: as_node.delete_node("n2")) == (
        'nodes "n2" is forbidden: User "system:node:n1" cannot delete resource "nodes" in '
        "API group \"\" at the cluster scope: node 'n1' cannot modify node 'n2'")
    as_node.patch_node("n1", {"metadata": {"labels": {"disk": "ssd"}}})
    assert [n.metadata.name for n in as_node.list_node().items] == ["n1", "n2"]


def test_a_node_reads_only_secrets_its_pods_reference(
        master: Master, admin: client.CoreV1Api, node_token: str) -> None:
    for name in ("used", "unused", "other-node"):
        admin.create_namespaced_secret("default", client.V1Secret(
            metadata=client.V1ObjectMeta(name=name), string_data={"k": name}))
    admin.create_namespaced_pod("default", _pod("mine", "n1", "used"))
    admin.create_namespaced_pod("default", _pod("theirs", "n2", "other-node"))
    as_node = client.CoreV1Api(_api(master, node_token))
    assert as_node.read_namespaced_secret("used", "default").data["k"]
    for name in ("unused", "other-node"):
        assert _refused(lambda n=name: as_node.read_namespaced_secret(n, "default")).endswith(
            "no relationship found between node 'n1' and this object")
    _refused(lambda: as_node.list_namespaced_secret("default"))
    status = {"status": {"phase": "Running"}}
    as_node.patch_namespaced_pod_status("mine", "default", status)
    _refused(lambda: as_node.patch_namespaced_pod_status("theirs", "default", status))
    _refused(lambda: as_node.delete_namespaced_pod("theirs", "default"))


def test_tokens_are_listed_without_secrets_and_revocable(master: Master) -> None:
    made = _corral(master, "create", "--user", "ci", "--group", "dev", "--ttl", "1h")
    token = made.stdout.strip()
    token_id, secret = token.split(".")
    listing = _corral(master, "list").stdout
    assert token_id in listing and secret not in listing and "ci" in listing
    assert secret not in (master.data_dir / "tokens.hashed").read_text()
    me = client.AuthenticationV1Api(_api(master, token)).create_self_subject_review(
        client.V1SelfSubjectReview())
    assert me.status.user_info.username == "ci"
    assert _corral(master, "revoke", token_id).returncode == 0
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(_api(master, token)).list_namespaced_pod("default")
    assert err.value.status == 401
    assert _corral(master, "revoke", token_id).returncode == 1
    assert _corral(master, "create", "--user", "x", "--ttl", "soon").returncode != 0
