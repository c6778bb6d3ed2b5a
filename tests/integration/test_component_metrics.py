"""Every component's /metrics exposes its families, with Kubernetes' names:
the master (API, and the scheduler and controllers it runs in-process), an agent
(through the API's node proxy, as Prometheus scrapes it), and the scheduler and
controllers as processes of their own (--metrics-listen), which also work under
their own identities (test_component_identities.py has the in-process ones)."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster import Component, Master, free_port
from tests.conftest import AgentFactory
from tests.poll import wait_for

STATUS_403 = re.compile(r"(?<![\w:,.])403(?![\w.])")  # the code, not digits of a number

API = {"apiserver_request_total", "apiserver_request_duration_seconds",
       "apiserver_current_watchers"}
SCHEDULER = {"scheduler_schedule_attempts_total", "scheduler_scheduling_attempt_duration_seconds",
             "scheduler_pod_scheduling_duration_seconds", "scheduler_preemption_attempts_total",
             "scheduler_preemption_victims", "scheduler_pending_pods"}
WORKQUEUE = {"workqueue_depth", "workqueue_adds_total", "workqueue_retries_total",
             "workqueue_queue_duration_seconds", "workqueue_work_duration_seconds"}
AGENT = {"kubelet_pod_start_duration_seconds", "kubelet_runtime_operations_total",
         "kubelet_runtime_operations_duration_seconds", "kubelet_runtime_operations_errors_total",
         "kubelet_running_pods", "corral_agent_heartbeat_age_seconds",
         "corral_proxy_connections_total", "corral_proxy_active_connections"}


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name → [(labels, value)], parsed by Prometheus' own parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def families(text: str) -> set[str]:
    """Family names as exposed (the parser drops a counter's _total suffix)."""
    return {f"{f.name}_total" if f.type == "counter" else f.name
            for f in text_string_to_metric_families(text)}


def value(text: str, metric: str, **labels: str) -> float:
    return sum(v for got, v in samples(text).get(metric, [])
               if all(got.get(k) == want for k, want in labels.items()))


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "metrics-pod"},
       "spec": {"containers": [{"name": "c", "image": "x", "command": ["sleep", "300"]}]}}


def test_master_and_agent_metrics(master: Master, agents: AgentFactory) -> None:
    agents(master, "metrics-node", node_ip="127.0.1.61")
    with master.http() as api:
        assert api.post("/api/v1/namespaces/default/pods", json=POD).status_code == 201

        def running() -> bool:
            pod = api.get("/api/v1/namespaces/default/pods/metrics-pod").json()
            return pod.get("status", {}).get("phase") == "Running"

        wait_for(running, 60, "the pod Running")
        text = api.get("/metrics").text
        assert API | SCHEDULER | WORKQUEUE <= families(text)
        assert value(text, "scheduler_schedule_attempts_total", result="scheduled") >= 1
        assert value(text, "scheduler_pod_scheduling_duration_seconds_count") >= 1
        assert value(text, "workqueue_adds_total", name="namespace-controller") >= 1
        assert value(text, "workqueue_work_duration_seconds_count",
                     name="namespace-controller") >= 1
        assert {labels["name"] for labels, _ in samples(text)["workqueue_depth"]} >= {
            "deployment-controller", "node-lifecycle-controller"}

        agent_text = api.get("/api/v1/nodes/metrics-node/proxy/metrics").text
        assert AGENT <= families(agent_text)
        assert value(agent_text, "kubelet_pod_start_duration_seconds_count") >= 1
        assert value(agent_text, "kubelet_runtime_operations_total",
                     operation_type="start_container") >= 1
        assert value(agent_text, "kubelet_running_pods") >= 1
        assert 0 <= value(agent_text, "corral_agent_heartbeat_age_seconds") < 30
        api.delete("/api/v1/namespaces/default/pods/metrics-pod")


def test_agent_metrics_need_the_masters_certificate(master: Master, agents: AgentFactory) -> None:
    agent = agents(master, "metrics-auth", node_ip="127.0.1.62")
    with master.http() as api:
        port = api.get("/api/v1/nodes/metrics-auth").json()["status"]["daemonEndpoints"][
            "kubeletEndpoint"]["Port"]
    assert agent.proc is not None
    # Only the master's client certificate is answered; the admin token is not.
    tls = ssl.create_default_context(cafile=str(master.ca_path))
    tls.check_hostname = False
    r = httpx.get(f"https://127.0.1.62:{port}/metrics", timeout=5, verify=tls,
                  headers={"Authorization": f"Bearer {master.token}"})
    assert r.status_code == 401


@pytest.fixture
def components(quiet_master: Master) -> Iterator[list[Component]]:
    started: list[Component] = []
    try:
        yield started
    finally:
        for c in started:
            c.stop()


def scrape(port: int, proc: Component) -> str | None:
    assert proc.proc is not None
    if proc.proc.poll() is not None:
        raise AssertionError(f"{proc.command} exited:\n{proc.log()}")
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    except httpx.HTTPError:
        return None
    return r.text if r.status_code == 200 else None


def test_scheduler_and_controllers_processes_serve_metrics_under_their_own_identities(
        quiet_master: Master, components: list[Component]) -> None:
    """quiet_master runs neither scheduler nor controllers: these processes do, each
    with the kubeconfig the master wrote for it (system:kube-scheduler and
    system:kube-controller-manager), and bind and make pods within their roles.
    (One pair of processes for both checks: they were two tests of two modules,
    each starting its own master and processes.)"""
    data = quiet_master.data_dir
    sched_port, ctrl_port = free_port(), free_port()
    controllers = Component(quiet_master, "controllers",
                            ["--metrics-listen", f"127.0.0.1:{ctrl_port}"],
                            kubeconfig=data / "controllers.kubeconfig")
    scheduler = Component(quiet_master, "scheduler",
                          ["--metrics-listen", f"127.0.0.1:{sched_port}"],
                          kubeconfig=data / "scheduler.kubeconfig")
    components.extend([controllers, scheduler])
    for part in components:
        part.start()
    sched_text = wait_for(lambda: scrape(sched_port, scheduler), 30, "scheduler metrics")
    assert SCHEDULER <= families(sched_text)
    assert not families(sched_text) & (API | WORKQUEUE)
    # A pod that fits nowhere (no nodes): an unschedulable attempt, a pending pod.
    with quiet_master.http() as api:
        assert api.post("/api/v1/namespaces/default/pods", json={
            **POD, "metadata": {"name": "metrics-pending"}}).status_code == 201

    def unschedulable() -> str | None:
        text = scrape(sched_port, scheduler)
        ok = text and value(text, "scheduler_schedule_attempts_total",
                            result="unschedulable") >= 1
        return text if ok else None

    text = wait_for(unschedulable, 30, "an unschedulable attempt counted")
    assert value(text, "scheduler_pending_pods", queue="active") + value(
        text, "scheduler_pending_pods", queue="unschedulable") >= 1
    ctrl_text = wait_for(lambda: scrape(ctrl_port, controllers), 30, "controller metrics")
    assert WORKQUEUE <= families(ctrl_text)
    assert not families(ctrl_text) & (API | SCHEDULER)

    # Under their own identities, the processes make and bind a Deployment's pods.
    admin = config.new_client_from_config(config_file=str(quiet_master.kubeconfig))
    core = client.CoreV1Api(admin)
    core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="n1"), status=(
        client.V1NodeStatus(allocatable={"cpu": "4", "memory": "8Gi", "pods": "10"},
                            capacity={"cpu": "4", "memory": "8Gi", "pods": "10"},
                            conditions=[client.V1NodeCondition(type="Ready",
                                                               status="True")]))))
    client.AppsV1Api(admin).create_namespaced_deployment("default", client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"), spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="c", image="x")])))))
    wait_for(lambda: len([p for p in core.list_namespaced_pod(
        "default", label_selector="app=web").items if p.spec.node_name == "n1"]) == 2,
             timeout=60, what="the deployment's pods made and bound by the processes")
    wait_for(lambda: any(e.reason == "Scheduled"
                         for e in core.list_namespaced_event("default").items),
             what="the scheduler's Events, written as itself")
    for part in components:
        # A refusal logs as the Forbidden error, its Status saying "... is forbidden:
        # User ...", or as its code: 403 on its own, not inside a port or a
        # millisecond stamp (":40357", ",403").
        log = part.log()
        assert "forbidden" not in log.lower() and not STATUS_403.search(log), log
