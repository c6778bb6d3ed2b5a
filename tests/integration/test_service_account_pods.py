"""A pod's ServiceAccount token from inside the pod: the real `kubernetes` client's
load_incluster_config() reads KUBERNETES_SERVICE_HOST/PORT and the files under
/var/run/secrets/kubernetes.io/serviceaccount (the agent's bind mount in the
container's own mount namespace), reaches the API through the default/kubernetes
Service, and may do what its Role allows and nothing else. The agent runs with a
node credential of its own, so its TokenRequests pass NodeRestriction. A pod with
automountServiceAccountToken: false sees no token; `kubectl exec` sees the pod's."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client, config

from corral.agent.sa_token import ProjectedToken
from corral.client.clock import FakeClock
from corral.client.http import Client
from tests.cluster import Agent, Master, wait_for
from tests.conftest import AgentFactory
from tests.kubectl import Kubectl
from tests.poll import eventually

NS = "incluster"
SCRIPT = """
import os, sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
print("host", os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
config.load_incluster_config()
core = client.CoreV1Api()
print("pods", sorted(p.metadata.name for p in core.list_namespaced_pod("incluster").items))
for call in (lambda: core.list_namespaced_secret("incluster"),
             lambda: core.list_namespaced_pod("default")):
    try:
        call()
        print("allowed")
    except ApiException as err:
        print("refused", err.status)
"""
NO_TOKEN = """
import os
print("token present", os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"))
"""


@pytest.fixture(scope="module")
def sa_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    # A service range of its own: the default/kubernetes Service's address (the
    # range's first) is then not shared with clusters other tests run at once.
    cidr = f"127.{random.randint(101, 250)}.{random.randint(0, 255)}.0/24"
    m = Master(tmp_path_factory.mktemp("sa-master"), extra_args=["--service-cidr", cidr]).start()
    try:
        yield m
    finally:
        m.stop()


def _pod(name: str, script: str, automount: bool | None = None) -> client.V1Pod:
    # Root: the test's interpreter (and its kubernetes client) is under /root, which
    # the node's pod user cannot enter (test_pod_security reads the token as it).
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name), spec=client.V1PodSpec(
        restart_policy="Never", automount_service_account_token=automount,
        security_context=client.V1PodSecurityContext(run_as_user=0),
        containers=[client.V1Container(name="c", image="python",
                                       command=[sys.executable, "-c", script])]))


def _finished_log(kubectl: Kubectl, name: str) -> str:
    wait_for(lambda: kubectl.run("get", "pod", name, "-n", NS, "-o",
                                 "jsonpath={.status.phase}").stdout in ("Succeeded", "Failed"),
             timeout=90, what=f"pod {name} to finish")
    return kubectl("logs", name, "-n", NS)


def test_in_cluster_client_works_within_its_role(
        sa_master: Master, agents: AgentFactory,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    kubectl = Kubectl(sa_master, tmp_path_factory.mktemp("kubecache"))
    agent: Agent = agents(sa_master, "sa-node")  # with its own node credential (the harness's)
    assert agent.proc is not None
    kubectl("create", "namespace", NS)
    kubectl("create", "role", "pod-reader", "-n", NS, "--verb=list", "--resource=pods")
    kubectl("create", "rolebinding", "default-reads", "-n", NS, "--role=pod-reader",
            "--serviceaccount=incluster:default")
    wait_for(lambda: kubectl.run("get", "sa", "default", "-n", NS).returncode == 0,
             what="the default ServiceAccount")
    wait_for(lambda: "127." in kubectl.run("get", "endpoints", "kubernetes", "-o",
                                           "jsonpath={.subsets[0].addresses[0].ip}").stdout,
             what="the masters' address in default/kubernetes")
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(sa_master.kubeconfig)))
    core.create_namespaced_pod(NS, _pod("inside", SCRIPT))
    out = _finished_log(kubectl, "inside")
    svc = core.read_namespaced_service("kubernetes", "default")
    assert f"host {svc.spec.cluster_ip} 443" in out, out
    assert "pods ['inside']" in out, out
    assert out.count("refused 403") == 2, out  # its Role grants no secrets, no other namespace
    pod = core.read_namespaced_pod("inside", NS)
    assert pod.spec.service_account_name == "default"
    assert pod.status.phase == "Succeeded"

    core.create_namespaced_pod(NS, _pod("without", NO_TOKEN, automount=False))
    assert "token present False" in _finished_log(kubectl, "without")

    # kubectl exec enters the container's mount namespace: it sees the pod's token.
    core.create_namespaced_pod(NS, _pod("sleeper", "import time; time.sleep(300)"))
    wait_for(lambda: kubectl.run("get", "pod", "sleeper", "-n", NS, "-o",
                                 "jsonpath={.status.phase}").stdout == "Running",
             timeout=60, what="the sleeper running")
    assert kubectl("exec", "sleeper", "-n", NS, "--", "cat",
                   "/var/run/secrets/kubernetes.io/serviceaccount/namespace") == NS
    core.delete_namespaced_pod("sleeper", NS, grace_period_seconds=0)


async def test_the_agent_renews_a_token_at_80_percent_of_its_life(
        sa_master: Master, tmp_path: Path) -> None:
    """ProjectedToken against the real master, on a fake clock: the token file is
    replaced (atomically, same directory) once 48 of its 60 minutes have passed."""
    async with Client.from_kubeconfig(sa_master.kubeconfig) as api:
        await api.create({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": "renew"}})

        async def has_account() -> bool:
            return bool((await api.list("ServiceAccount", "renew")).items)
        await eventually(has_account, what="the default ServiceAccount of renew")
        pod = await api.create({"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": "p", "namespace": "renew"},
                                "spec": {"nodeName": "nowhere", "containers": [
                                    {"name": "c", "image": "x"}]}}, "renew")
        clock = FakeClock(datetime.now(UTC))
        projected = ProjectedToken(api, tmp_path / "pod", sa_master.ca_pem, clock)
        directory = await projected.ensure(pod)
        assert directory is not None
        first = (directory / "token").read_text()
        assert (directory / "namespace").read_text() == "renew"
        assert (directory / "ca.crt").read_bytes() == sa_master.ca_pem
        clock.advance(47 * 60)
        await projected.ensure(pod)
        assert (directory / "token").read_text() == first
        clock.advance(2 * 60)
        await projected.ensure(pod)
        assert (directory / "token").read_text() != first
        whoami = await api.raw("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                               json_body={"spec": {"token": (directory / "token").read_text()}})
        user = whoami.json()["status"]["user"]
        assert user["username"] == "system:serviceaccount:renew:default"
        assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["p"]
