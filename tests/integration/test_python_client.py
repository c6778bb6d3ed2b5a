"""The official `kubernetes` Python client against a real `corral master`."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.cluster import Master


@pytest.fixture(scope="module")
def core(quiet_master: Master) -> client.CoreV1Api:
    api_client = config.new_client_from_config(config_file=str(quiet_master.kubeconfig))
    return client.CoreV1Api(api_client)


def _pod(name: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "py"}),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="c", image="busybox", command=["sleep", "5"],
            resources=client.V1ResourceRequirements(requests={"cpu": "100m", "memory": "16Mi"}),
        )]),
    )


def test_create_list_get(core: client.CoreV1Api) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
    created = core.create_namespaced_pod("py", _pod("one"))
    assert created.metadata.uid and created.status.phase == "Pending"
    pods = core.list_namespaced_pod("py", label_selector="app=py")
    assert [p.metadata.name for p in pods.items] == ["one"]
    assert pods.metadata.resource_version
    got = core.read_namespaced_pod("one", "py")
    assert got.spec.containers[0].resources.requests["cpu"] == "100m"


def test_errors_are_api_exceptions(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("missing", "default")
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("default", _pod("Not_Valid"))
    assert err.value.status == 422


def test_watch(core: client.CoreV1Api) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyw")))
    rv = core.list_namespaced_pod("pyw").metadata.resource_version
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def run() -> None:
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_pod, "pyw", resource_version=rv,
                              timeout_seconds=10):
            obj: Any = event["object"]
            seen.append((event["type"], obj.metadata.name))
            if len(seen) == 2:
                w.stop()
        done.set()

    t = threading.Thread(target=run)
    t.start()
    core.create_namespaced_pod("pyw", _pod("w"))
    core.delete_namespaced_pod("w", "pyw")
    t.join(20)
    assert done.is_set()
    assert seen == [("ADDED", "w"), ("DELETED", "w")]
