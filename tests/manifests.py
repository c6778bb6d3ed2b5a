"""The one set of manifest builders for tests: wire dicts of the kinds tests
create, with the fewest fields the API needs. Every builder takes ``**spec`` for
what a test adds to (or overrides in) the object's spec, so a test states only
what it is about.

    container(command)                         {"name": "main", "image": "none", ...}
    pod_template(labels, command)              a template for workloads
    pod(name, command) deployment(name, n) replica_set(name, n) job(name, command)
    task_array(name, completions, command)     a Job run as tasks
    service(name, selector) namespace(name) node(name) quota(name, ns, hard)
"""

from __future__ import annotations

from typing import Any

from corral.objects import Obj

SLEEP = ["sleep", "3600"]


def metadata(name: str | None = None, namespace: str | None = None,
             labels: dict[str, str] | None = None) -> Obj:
    m: Obj = {}
    if name is not None:
        m["name"] = name
    if namespace is not None:
        m["namespace"] = namespace
    if labels is not None:
        m["labels"] = labels
    return m


def container(command: list[str] | None = None, *, name: str = "main", image: str = "none",
              **extra: Any) -> Obj:
    return {"name": name, "image": image, "command": list(command or SLEEP), **extra}


def pod_spec(command: list[str] | None = None, *, containers: list[Obj] | None = None,
             **spec: Any) -> Obj:
    return {"containers": containers if containers is not None else [container(command)],
            **spec}


def pod_template(labels: dict[str, str] | None = None, command: list[str] | None = None, *,
                 containers: list[Obj] | None = None, **spec: Any) -> Obj:
    template: Obj = {"spec": pod_spec(command, containers=containers, **spec)}
    if labels is not None:
        template["metadata"] = {"labels": labels}
    return template


def pod(name: str, command: list[str] | None = None, *, namespace: str | None = None,
        labels: dict[str, str] | None = None, containers: list[Obj] | None = None,
        **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata(name, namespace, labels),
            "spec": pod_spec(command, containers=containers, **spec)}


def _workload(kind: str, name: str, replicas: int, template: Obj | None,
              namespace: str | None, spec: dict[str, Any]) -> Obj:
    template = template or pod_template({"app": name})
    selector = {"matchLabels": dict(template.get("metadata", {}).get("labels") or {})}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata(name, namespace),
            "spec": {"replicas": replicas, "selector": selector, "template": template,
                     **spec}}


def deployment(name: str, replicas: int = 1, *, template: Obj | None = None,
               namespace: str | None = None, **spec: Any) -> Obj:
    """Selecting app=<name> unless ``template`` carries other labels."""
    return _workload("Deployment", name, replicas, template, namespace, spec)


def replica_set(name: str, replicas: int = 1, *, template: Obj | None = None,
                namespace: str | None = None, **spec: Any) -> Obj:
    return _workload("ReplicaSet", name, replicas, template, namespace, spec)


def job(name: str, command: list[str] | None = None, *, template: Obj | None = None,
        namespace: str | None = None, **spec: Any) -> Obj:
    template = template or pod_template(command=command, restartPolicy="Never")
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(name, namespace),
            "spec": {**spec, "template": template}}


def task_array(name: str, completions: int, command: list[str] | None = None, *,
               template: Obj | None = None, namespace: str | None = None, **spec: Any) -> Obj:
    """A Job run as tasks (corral.dev/run-as: tasks): Indexed, in Allocs, no Pods."""
    obj = job(name, command, template=template, namespace=namespace,
              **{"completionMode": "Indexed", "completions": completions, **spec})
    obj["metadata"]["annotations"] = {"corral.dev/run-as": "tasks"}
    return obj


def service(name: str, selector: dict[str, str] | None = None, *,
            ports: list[Obj] | None = None, namespace: str | None = None,
            **spec: Any) -> Obj:
    body: Obj = {"selector": selector or {"app": name},
                 "ports": ports if ports is not None else [{"port": 80}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(name, namespace),
            "spec": body}


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service_account(namespace: str, name: str = "default") -> Obj:
    """A ServiceAccount. Pods need theirs to exist (ServiceAccount admission): on a
    master without controllers no one makes a new namespace's `default` but the test."""
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace}}


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: int = 110, *,
         taints: list[Obj] | None = None, labels: dict[str, str] | None = None) -> Obj:
    """A Ready node (for tests that register nodes without an agent)."""
    resources = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints} if taints else {},
        "status": {"capacity": resources, "allocatable": resources,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    }


def quota(name: str, namespace: str, hard: dict[str, str], **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"hard": hard, **spec}}
