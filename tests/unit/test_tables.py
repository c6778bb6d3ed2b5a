"""Table output: the columns and cells `kubectl get` prints against a real
Kubernetes cluster, computed from wire-shaped objects at a fixed `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral.api import tables
from corral.api.resources import BY_KIND, RESOURCES, Resource
from corral.api.tables.age import human_duration
from corral.objects import rfc3339

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
KUBECTL_TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")


def ago(**delta: float) -> str:
    return rfc3339(NOW - timedelta(**delta))


def meta(name: str = "x", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(minutes=5),
            "resourceVersion": "12", **extra}


def row(kind: str, obj: dict[str, Any], wide: bool = False) -> dict[str, Any]:
    """The cells by column header, as kubectl would print them (-o wide or not)."""
    table = tables.to_table(BY_KIND[kind], [obj], now=NOW)
    columns = table["columnDefinitions"]
    cells = table["rows"][0]["cells"]
    return {c["name"].upper(): cell for c, cell in zip(columns, cells, strict=True)
            if wide or c["priority"] == 0}


# --- AGE --------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [
    (-3, "<invalid>"), (-1.5, "0s"), (-1, "0s"), (0, "0s"), (1, "1s"), (119, "119s"),
    (120, "2m"), (192, "3m12s"), (300, "5m"), (599, "9m59s"), (600, "10m"),
    (179 * 60 + 59, "179m"), (3 * 3600, "3h"), (3 * 3600 + 300, "3h5m"),
    (7 * 3600 + 59 * 60, "7h59m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"),
    (51 * 3600, "2d3h"), (191 * 3600, "7d23h"), (192 * 3600, "8d"), (729 * 86400, "729d"),
    (730 * 86400, "2y"), (731 * 86400, "2y1d"), (8 * 365 * 86400, "8y"),
    (20 * 365 * 86400, "20y"),
])
def test_human_duration_matches_kubernetes(seconds: float, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text


# --- negotiation and shape --------------------------------------------------------


@pytest.mark.parametrize(("accept", "expected"), [
    (KUBECTL_TABLE_ACCEPT, True),
    ("application/json;as=Table;g=meta.k8s.io;v=v1", True),
    ("application/json", False),
    ("", False),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", False),
    ("application/yaml", False),
])
def test_wants_table(accept: str, expected: bool) -> None:
    assert tables.wants_table(accept) is expected


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.kind)
def test_every_kind_has_one_cell_per_column_even_for_a_bare_object(res: Resource) -> None:
    table = tables.to_table(res, [{"metadata": meta("bare")}, {}], now=NOW)
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    for column in table["columnDefinitions"]:
        assert set(column) == {"name", "type", "format", "description", "priority"}
        assert column["type"] in ("string", "integer", "boolean", "number")
    for r in table["rows"]:
        assert len(r["cells"]) == len(table["columnDefinitions"])
        assert all(isinstance(c, (str, int, bool)) for c in r["cells"])


def test_rows_carry_partial_object_metadata_by_default() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta("web", labels={"a": "b"})}
    [r] = tables.to_table(BY_KIND["Pod"], [pod], now=NOW)["rows"]
    assert r["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": pod["metadata"]}
    [whole] = tables.to_table(BY_KIND["Pod"], [pod], include_object="Object")["rows"]
    assert whole["object"] == pod
    [bare] = tables.to_table(BY_KIND["Pod"], [pod], include_object="None")["rows"]
    assert "object" not in bare
    with pytest.raises(ValueError):
        tables.to_table(BY_KIND["Pod"], [pod], include_object="Everything")


def test_kind_without_a_printer_gets_name_and_age() -> None:
    widget = Resource("example.com", "v1", "Widget", "widgets", True)
    table = tables.to_table(widget, [{"metadata": meta("w")}], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"] == ["w", "5m"]


def test_watch_event_row() -> None:
    ns = {"metadata": {**meta("prod"), "resourceVersion": "99"}, "status": {"phase": "Active"}}
    event = tables.table_row_event(BY_KIND["Namespace"], ns, "MODIFIED", now=NOW)
    assert event["type"] == "MODIFIED"
    assert "columnDefinitions" not in event["object"]
    assert event["object"]["metadata"] == {"resourceVersion": "99"}
    assert event["object"]["rows"][0]["cells"] == ["prod", "Active", "5m"]
    first = tables.table_row_event(BY_KIND["Namespace"], ns, with_columns=True, now=NOW)
    assert first["type"] == "ADDED" and len(first["object"]["columnDefinitions"]) == 3


# --- pods -------------------------------------------------------------------------


def pod(*statuses: dict[str, Any], phase: str = "Running", containers: int = 1,
        **extra: Any) -> dict[str, Any]:
    return {
        "metadata": meta("p", **extra.pop("metadata", {})),
        "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)],
                 **extra.pop("spec", {})},
        "status": {"phase": phase, "containerStatuses": list(statuses), **extra},
    }


def running(ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ago(minutes=1)}}, **extra}


def waiting(reason: str, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": reason}}, **extra}


def terminated(reason: str = "", exit_code: int = 0, signal: int = 0) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": exit_code}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"ready": False, "restartCount": 0, "state": {"terminated": state}}


def test_pod_columns() -> None:
    cells = row("Pod", pod(running(), running(ready=False), containers=2))
    assert cells == {"NAME": "p", "READY": "1/2", "STATUS": "Running", "RESTARTS": "0",
                     "AGE": "5m"}


@pytest.mark.parametrize(("obj", "status"), [
    (pod(waiting("CrashLoopBackOff", restarts=4)), "CrashLoopBackOff"),
    (pod(waiting("ContainerCreating")), "ContainerCreating"),
    (pod(terminated("Completed"), phase="Succeeded"), "Completed"),
    (pod(terminated("OOMKilled", 137), phase="Failed"), "OOMKilled"),
    (pod(terminated(exit_code=3), phase="Failed"), "ExitCode:3"),
    (pod(terminated(exit_code=137, signal=9), phase="Failed"), "Signal:9"),
    (pod(running(), metadata={"deletionTimestamp": ago(seconds=3)}), "Terminating"),
    (pod(terminated("Completed"), phase="Succeeded",
         metadata={"deletionTimestamp": ago(seconds=3)}), "Completed"),
    (pod(phase="Pending"), "Pending"),
    (pod(phase="Failed", reason="Evicted"), "Evicted"),
    # The first container's reason wins, as Kubernetes walks them from the last.
    (pod(waiting("ImagePullBackOff"), waiting("CrashLoopBackOff"), containers=2),
     "ImagePullBackOff"),
    # A completed sidecar-less container next to a running one is still Running.
    (pod(terminated("Completed"), running(), containers=2,
         conditions=[{"type": "Ready", "status": "True"}]), "Running"),
    (pod(terminated("Completed"), running(), containers=2), "NotReady"),
    (pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                       "reason": "SchedulingGated"}]), "SchedulingGated"),
    (pod(phase="Running", reason="NodeLost", metadata={"deletionTimestamp": ago(seconds=3)}),
     "Unknown"),
])
def test_pod_status(obj: dict[str, Any], status: str) -> None:
    assert row("Pod", obj)["STATUS"] == status


def test_pod_init_containers() -> None:
    spec = {"initContainers": [{"name": "a"}, {"name": "b"}]}
    done = terminated("Completed")
    assert row("Pod", pod(done, {"state": {"running": {}}}, phase="Pending",
                          spec=spec, initContainerStatuses=[done, {"state": {"running": {}}}],
                          containerStatuses=[]))["STATUS"] == "Init:1/2"
    assert row("Pod", pod(phase="Pending", spec=spec, containerStatuses=[],
                          initContainerStatuses=[waiting("CrashLoopBackOff")])
               )["STATUS"] == "Init:CrashLoopBackOff"
    assert row("Pod", pod(phase="Failed", spec=spec, containerStatuses=[],
                          initContainerStatuses=[terminated("Error", 1)])
               )["STATUS"] == "Init:Error"
    assert row("Pod", pod(phase="Pending", spec=spec, containerStatuses=[],
                          initContainerStatuses=[terminated(exit_code=2)])
               )["STATUS"] == "Init:ExitCode:2"


def test_sidecar_counts_toward_ready_and_restarts() -> None:
    spec = {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}]}
    sidecar = {**running(restarts=2), "name": "proxy", "started": True}
    cells = row("Pod", pod(running(restarts=1), spec=spec, initContainerStatuses=[sidecar],
                           conditions=[{"type": "Initialized", "status": "True"}]))
    assert (cells["READY"], cells["STATUS"], cells["RESTARTS"]) == ("2/2", "Running", "3")


def test_restarts_show_when_the_last_one_was() -> None:
    last = {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=5)}}
    older = {"terminated": {"exitCode": 1, "finishedAt": ago(hours=2)}}
    obj = pod(waiting("CrashLoopBackOff", restarts=3, lastState=last),
              running(restarts=1, lastState=older), containers=2)
    assert row("Pod", obj)["RESTARTS"] == "4 (5m ago)"
    assert row("Pod", pod(running(restarts=2)))["RESTARTS"] == "2"


def test_pod_wide_columns() -> None:
    obj = pod(running(), podIP="10.1.0.5", podIPs=[{"ip": "10.1.0.5"}],
              nominatedNodeName="node-b",
              conditions=[{"type": "gate/one", "status": "True"},
                          {"type": "gate/two", "status": "False"}],
              spec={"nodeName": "node-a", "readinessGates": [{"conditionType": "gate/one"},
                                                             {"conditionType": "gate/two"}]})
    cells = row("Pod", obj, wide=True)
    assert [cells[k] for k in ("IP", "NODE", "NOMINATED NODE", "READINESS GATES")] == [
        "10.1.0.5", "node-a", "node-b", "1/2"]
    bare = row("Pod", pod(phase="Pending"), wide=True)
    assert [bare[k] for k in ("IP", "NODE", "NOMINATED NODE", "READINESS GATES")] == [
        "<none>"] * 4


def test_finished_pod_rows_carry_the_completed_condition() -> None:
    table = tables.to_table(BY_KIND["Pod"], [pod(terminated("Completed"), phase="Succeeded"),
                                            pod(running())], now=NOW)
    assert table["rows"][0]["conditions"][0]["type"] == "Completed"
    assert "conditions" not in table["rows"][1]


# --- nodes ------------------------------------------------------------------------


def node(ready: str | None, unschedulable: bool = False,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {"metadata": {**meta("n1", labels=labels), "namespace": None},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      *conditions],
                       "addresses": [{"type": "Hostname", "address": "n1"},
                                     {"type": "InternalIP", "address": "127.0.1.1"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0-corral",
                                    "kernelVersion": "6.1.0"}}}


@pytest.mark.parametrize(("obj", "status"), [
    (node("True"), "Ready"), (node("False"), "NotReady"), (node("Unknown"), "NotReady"),
    (node(None), "Unknown"), (node("True", unschedulable=True), "Ready,SchedulingDisabled"),
    (node("False", unschedulable=True), "NotReady,SchedulingDisabled"),
])
def test_node_status(obj: dict[str, Any], status: str) -> None:
    assert row("Node", obj)["STATUS"] == status


def test_node_columns() -> None:
    labels = {"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "",
              "kubernetes.io/role": "edge", "other": "x"}
    cells = row("Node", node("True", labels=labels), wide=True)
    assert cells == {
        "NAME": "n1", "STATUS": "Ready", "ROLES": "control-plane,edge,worker", "AGE": "5m",
        "VERSION": "v1.32.0-corral", "INTERNAL-IP": "127.0.1.1", "EXTERNAL-IP": "<none>",
        "OS-IMAGE": "<unknown>", "KERNEL-VERSION": "6.1.0", "CONTAINER-RUNTIME": "<unknown>",
    }
    assert row("Node", node("True"))["ROLES"] == "<none>"


# --- workloads --------------------------------------------------------------------

TEMPLATE = {"spec": {"containers": [{"name": "web", "image": "nginx:1"},
                                    {"name": "log", "image": "busybox"}]}}
SELECTOR = {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                 {"key": "legacy", "operator": "DoesNotExist"},
                                 {"key": "zone", "operator": "NotIn", "values": ["x"]},
                                 {"key": "canary", "operator": "Exists"}]}


def test_deployment_columns() -> None:
    obj = {"metadata": meta("web"),
           "spec": {"replicas": 3, "selector": SELECTOR, "template": TEMPLATE},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 1}}
    assert row("Deployment", obj, wide=True) == {
        "NAME": "web", "READY": "2/3", "UP-TO-DATE": 3, "AVAILABLE": 1, "AGE": "5m",
        "CONTAINERS": "web,log", "IMAGES": "nginx:1,busybox",
        "SELECTOR": "app=web,canary,!legacy,tier in (a,b),zone notin (x)",
    }
    fresh = row("Deployment", {"metadata": meta("new"), "spec": {}})
    assert (fresh["READY"], fresh["UP-TO-DATE"], fresh["AVAILABLE"]) == ("0/1", 0, 0)


def test_replicaset_columns() -> None:
    obj = {"metadata": meta("web-1a"), "spec": {"replicas": 2, "template": TEMPLATE},
           "status": {"replicas": 3, "readyReplicas": 1}}
    assert row("ReplicaSet", obj) == {"NAME": "web-1a", "DESIRED": 2, "CURRENT": 3,
                                      "READY": 1, "AGE": "5m"}


def job(conditions: tuple[str, ...] = (), **spec: Any) -> dict[str, Any]:
    return {"metadata": meta("j"), "spec": {"template": TEMPLATE, **spec},
            "status": {"succeeded": 1, "startTime": ago(minutes=3),
                       "conditions": [{"type": c, "status": "True"} for c in conditions]}}


def test_job_columns() -> None:
    assert row("Job", job(completions=3, parallelism=2)) == {
        "NAME": "j", "STATUS": "Running", "COMPLETIONS": "1/3", "DURATION": "3m", "AGE": "5m"}
    assert row("Job", job(parallelism=4))["COMPLETIONS"] == "1/1 of 4"
    assert row("Job", job())["COMPLETIONS"] == "1/1"
    done = job(("Complete",), completions=1)
    done["status"]["completionTime"] = ago(minutes=2, seconds=18)
    assert (row("Job", done)["STATUS"], row("Job", done)["DURATION"]) == ("Complete", "42s")
    assert row("Job", {"metadata": meta("new"), "spec": {}})["DURATION"] == ""


@pytest.mark.parametrize(("conditions", "deleting", "status"), [
    (("Failed",), False, "Failed"), (("Suspended",), False, "Suspended"),
    (("Suspended",), True, "Terminating"), (("Complete",), True, "Complete"),
    (("FailureTarget",), False, "FailureTarget"),
    (("SuccessCriteriaMet",), False, "SuccessCriteriaMet"), ((), True, "Terminating"),
])
def test_job_status(conditions: tuple[str, ...], deleting: bool, status: str) -> None:
    obj = job(conditions)
    if deleting:
        obj["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert row("Job", obj)["STATUS"] == status


# --- services and endpoints -------------------------------------------------------


def test_service_columns() -> None:
    obj = {"metadata": meta("web"),
           "spec": {"type": "NodePort", "clusterIP": "10.0.0.7", "clusterIPs": ["10.0.0.7"],
                    "selector": {"tier": "f", "app": "web"},
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                              {"port": 53, "protocol": "UDP"}]}}
    assert row("Service", obj, wide=True) == {
        "NAME": "web", "TYPE": "NodePort", "CLUSTER-IP": "10.0.0.7", "EXTERNAL-IP": "<none>",
        "PORT(S)": "80:30080/TCP,53/UDP", "AGE": "5m", "SELECTOR": "app=web,tier=f"}


@pytest.mark.parametrize(("spec", "status", "external"), [
    ({"type": "ClusterIP", "externalIPs": ["1.2.3.4"]}, {}, "1.2.3.4"),
    ({"type": "LoadBalancer"}, {}, "<pending>"),
    ({"type": "LoadBalancer"}, {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"},
                                                             {"hostname": "lb.example"}]}},
     "5.6.7.8,lb.example"),
    ({"type": "ExternalName", "externalName": "db.example"}, {}, "db.example"),
])
def test_service_external_ip(spec: dict[str, Any], status: dict[str, Any],
                             external: str) -> None:
    cells = row("Service", {"metadata": meta("s"), "spec": spec, "status": status})
    assert cells["EXTERNAL-IP"] == external
    assert cells["CLUSTER-IP"] == "<none>" and cells["PORT(S)"] == "<none>"


def test_endpoints_columns() -> None:
    def subset(*ips: str, ports: tuple[int, ...] = (80,)) -> dict[str, Any]:
        return {"addresses": [{"ip": ip} for ip in ips],
                "ports": [{"port": p} for p in ports]}

    def shown(*subsets: dict[str, Any]) -> str:
        return str(row("Endpoints", {"metadata": meta("e"), "subsets": list(subsets)})[
            "ENDPOINTS"])

    assert shown() == "<none>"
    assert shown(subset("10.0.0.1")) == "10.0.0.1:80"
    assert shown(subset("10.0.0.1", "10.0.0.2"), subset("10.0.0.3", ports=(81, 82))) == (
        "10.0.0.1:80,10.0.0.2:80,10.0.0.3:81 + 1 more...")
    assert shown(subset("10.0.0.9", ports=())) == "10.0.0.9"
    assert shown(subset("fd00::1")) == "[fd00::1]:80"


# --- everything else --------------------------------------------------------------


def test_event_columns() -> None:
    obj = {"metadata": meta("web.17a"), "type": "Warning", "reason": "BackOff",
           "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{c}"},
           "message": "Back-off restarting failed container\n", "count": 7,
           "firstTimestamp": ago(hours=1), "lastTimestamp": ago(seconds=30),
           "source": {"component": "kubelet", "host": "n1"}}
    assert row("Event", obj, wide=True) == {
        "LAST SEEN": "30s", "TYPE": "Warning", "REASON": "BackOff", "OBJECT": "pod/web-1",
        "SUBOBJECT": "spec.containers{c}", "SOURCE": "kubelet, n1",
        "MESSAGE": "Back-off restarting failed container", "FIRST SEEN": "60m", "COUNT": 7,
        "NAME": "web.17a"}
    new_api = row("Event", {"metadata": meta("e"), "eventTime": "2024-06-01T11:59:00.000000Z",
                            "involvedObject": {"kind": "Node"}}, wide=True)
    assert (new_api["LAST SEEN"], new_api["COUNT"], new_api["OBJECT"], new_api["SOURCE"]) == (
        "60s", 1, "node", "<unknown>")
    assert list(row("Event", obj)) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def test_small_kinds() -> None:
    assert row("Namespace", {"metadata": meta("prod"), "status": {"phase": "Terminating"}}) == {
        "NAME": "prod", "STATUS": "Terminating", "AGE": "5m"}
    assert row("ConfigMap", {"metadata": meta("c"), "data": {"a": "1", "b": "2"},
                             "binaryData": {"c": "AA=="}}) == {
        "NAME": "c", "DATA": 3, "AGE": "5m"}
    assert row("Secret", {"metadata": meta("s"), "type": "kubernetes.io/tls",
                          "data": {"tls.crt": "", "tls.key": ""}}) == {
        "NAME": "s", "TYPE": "kubernetes.io/tls", "DATA": 2, "AGE": "5m"}
    assert row("Secret", {"metadata": meta("o")})["TYPE"] == "Opaque"
    assert row("Lease", {"metadata": meta("n1"), "spec": {"holderIdentity": "n1"}}) == {
        "NAME": "n1", "HOLDER": "n1", "AGE": "5m"}
    assert row("Lease", {"metadata": meta("free"), "spec": {}})["HOLDER"] == ""
    assert row("PriorityClass", {"metadata": meta("prod"), "value": 1000,
                                 "globalDefault": True}) == {
        "NAME": "prod", "VALUE": 1000, "GLOBAL-DEFAULT": True, "AGE": "5m",
        "PREEMPTIONPOLICY": "PreemptLowerPriority"}


def test_resourcequota_columns() -> None:
    obj = {"metadata": meta("q"),
           "status": {"hard": {"pods": "10", "requests.cpu": "4", "limits.cpu": "8",
                               "limits.memory": "8Gi"},
                      "used": {"pods": "2", "requests.cpu": "500m", "limits.cpu": "1"}}}
    assert row("ResourceQuota", obj) == {
        "NAME": "q", "AGE": "5m", "REQUEST": "pods: 2/10, requests.cpu: 500m/4",
        "LIMIT": "limits.cpu: 1/8, limits.memory: 0/8Gi"}


def test_endpoint_slice_columns() -> None:
    def slice_row(ports: list[dict[str, Any]], *addresses: list[str]) -> dict[str, Any]:
        return row("EndpointSlice", {
            "metadata": meta("web-x7k2p"), "addressType": "IPv4", "ports": ports,
            "endpoints": [{"addresses": a} for a in addresses]})

    assert slice_row([{"name": "http", "port": 8080}], ["10.0.0.1"]) == {
        "NAME": "web-x7k2p", "ADDRESSTYPE": "IPv4", "PORTS": "8080",
        "ENDPOINTS": "10.0.0.1", "AGE": "5m"}
    many = slice_row([{"port": p} for p in (1, 2, 3, 4, 5)] + [{"name": "all"}, {}],
                     ["10.0.0.1", "10.0.0.2"], ["10.0.0.3"], ["10.0.0.4"])
    assert many["PORTS"] == "1,2,3 + 4 more..."
    assert many["ENDPOINTS"] == "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."
    placeholder = slice_row([])
    assert (placeholder["PORTS"], placeholder["ENDPOINTS"]) == ("<unset>", "<unset>")
    # A port with no number is "every port": its name, else "*".
    assert slice_row([{"name": "all"}, {}], ["10.0.0.1"])["PORTS"] == "all,*"
