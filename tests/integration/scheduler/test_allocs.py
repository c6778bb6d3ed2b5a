"""Allocs (corral.dev/v1) against a real master: served like every kind (kubectl
table, validation), placed by the scheduler exactly as pods — never
double-booked against them — preempted by a higher band, and charged to quota.
Nodes are posted through the API (no agents; controllers off, as in
test_scheduling)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.api.errors import Forbidden, Invalid
from corral.client.http import Client
from tests.cluster import Master
from tests.integration.scheduler.helpers import pod
from tests.manifests import namespace, node, service_account
from tests.poll import eventually


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("allocs"), extra_args=["--disable", "controllers"]).start()
    try:
        yield m
    finally:
        m.stop()


def alloc(name: str, cpu: str, *, ns: str = "default", priority_class: str | None = None,
          node_selector: dict[str, str] | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"resources": {"cpu": cpu, "memory": "64Mi"}, "slots": 2}
    if priority_class:
        spec["priorityClassName"] = priority_class
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"apiVersion": "corral.dev/v1", "kind": "Alloc",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


async def node_name(client: Client, kind: str, name: str, ns: str = "default") -> str:
    return str((await client.get(kind, name, ns))["spec"].get("nodeName") or "")


async def test_allocs_and_pods_share_nodes_without_double_booking(client: Client) -> None:
    await client.create(node("a1", cpu="2", labels={"pool": "alloc"}))
    await client.create(alloc("big", "1500m", node_selector={"pool": "alloc"}))
    assert await eventually(lambda: node_name(client, "Alloc", "big"), what="alloc bound") == "a1"
    bound = await client.get("Alloc", "big", "default")
    assert [c["type"] for c in bound["status"]["conditions"]] == ["Scheduled"]
    # A pod that would fit the node alone does not fit beside the Alloc.
    await client.create(pod("beside", cpu="1", extra_spec={"nodeSelector": {"pool": "alloc"}}))

    async def refused() -> bool:
        events = (await client.list("Event", "default",
                                    field_selector="involvedObject.name=beside")).items
        return any(e["reason"] == "FailedScheduling" for e in events)

    await eventually(refused, what="FailedScheduling for the pod")
    assert await node_name(client, "Pod", "beside") == ""
    # An Alloc that cannot fit gets the pod's FitError on the Alloc itself.
    await client.create(alloc("too-big", "3", node_selector={"pool": "alloc"}))

    async def alloc_refused() -> list[dict[str, object]]:
        return [e for e in (await client.list(
            "Event", "default", field_selector="involvedObject.name=too-big")).items
            if e["reason"] == "FailedScheduling" and e["involvedObject"]["kind"] == "Alloc"]

    event = (await eventually(alloc_refused, what="FailedScheduling for the alloc"))[0]
    assert "Insufficient cpu" in str(event["message"])
    status = (await client.get("Alloc", "too-big", "default"))["status"]
    assert status["conditions"][0]["type"] == "Scheduled"
    assert status["conditions"][0]["reason"] == "Unschedulable"


async def test_a_prod_pod_preempts_a_batch_alloc(client: Client) -> None:
    await client.create(node("p1", cpu="2", labels={"pool": "preempt"}))
    await client.create(alloc("batch", "2", priority_class="batch",
                              node_selector={"pool": "preempt"}))
    await eventually(lambda: node_name(client, "Alloc", "batch"), what="batch alloc bound")
    await client.create(pod("prod", cpu="2", priority_class="production",
                            extra_spec={"nodeSelector": {"pool": "preempt"}}))

    async def evicted() -> bool:
        got = await client.get("Alloc", "batch", "default")
        return bool(got["metadata"].get("deletionTimestamp"))

    await eventually(evicted, what="the alloc's graceful deletion")
    # No agent runs here: finish the graceful deletion as the alloc's agent would.
    await client.delete("Alloc", "batch", "default", grace_period_seconds=0)
    assert await eventually(lambda: node_name(client, "Pod", "prod"), what="prod bound") == "p1"


async def test_quota_counts_an_alloc(client: Client) -> None:
    await client.create(namespace("aq"))
    await client.create(service_account("aq"))  # no controllers here to make it
    await client.create({"apiVersion": "v1", "kind": "ResourceQuota",
                         "metadata": {"name": "q", "namespace": "aq"},
                         "spec": {"hard": {"requests.cpu": "2", "count/allocs.corral.dev": "5"}}})
    await client.create(alloc("one", "1500m", ns="aq"))
    used = (await client.get("ResourceQuota", "q", "aq"))["status"]["used"]
    assert used == {"requests.cpu": "1500m", "count/allocs.corral.dev": "1"}
    with pytest.raises(Forbidden) as err:
        await client.create(pod("p", cpu="1", namespace="aq"))
    assert "exceeded quota: q" in err.value.message

    async def resize(cpu: str) -> dict[str, str]:
        await client.patch("Alloc", "one", {"spec": {"resources": {"cpu": cpu}}}, "aq")
        return dict((await client.get("ResourceQuota", "q", "aq"))["status"]["used"])

    # Resized in place (as a framework's standing Alloc is): charged what it grows
    # by, refused past the quota, refunded what it shrinks by.
    assert (await resize("1800m"))["requests.cpu"] == "1800m"
    with pytest.raises(Forbidden) as err:
        await resize("2500m")
    assert "exceeded quota: q" in err.value.message
    assert (await client.get("Alloc", "one", "aq"))["spec"]["resources"]["cpu"] == "1800m"
    assert (await resize("500m"))["requests.cpu"] == "500m"
    await client.delete("Alloc", "one", "aq", grace_period_seconds=0)

    async def refunded() -> bool:
        got = (await client.get("ResourceQuota", "q", "aq"))["status"]["used"]
        return bool(got["requests.cpu"] == "0")

    await eventually(refunded, what="the alloc's usage refunded")


async def test_bad_alloc_is_422_with_the_field(client: Client) -> None:
    bad = alloc("bad", "1")
    bad["spec"] = {**bad["spec"], "slots": 0, "ranges": "5-2"}  # type: ignore[dict-item]
    with pytest.raises(Invalid) as err:
        await client.create(bad)
    fields = {c.field for c in err.value.causes}
    assert fields == {"spec.slots", "spec.ranges"}


def test_kubectl_lists_allocs_with_columns(master: Master, tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(master.kubeconfig),
           "KUBECACHEDIR": str(tmp_path / "cache")}
    manifest = tmp_path / "alloc.json"
    manifest.write_text(json.dumps(alloc("from-kubectl", "100m")))
    subprocess.run(["kubectl", "apply", "-f", str(manifest)], env=env, check=True,
                   capture_output=True)
    out = subprocess.run(["kubectl", "get", "allocs", "from-kubectl"], env=env, check=True,
                         capture_output=True, text=True).stdout
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "STATUS", "NODE", "SLOTS", "RUNNING", "COMPLETED", "AGE"]
    assert row.split()[0] == "from-kubectl" and row.split()[3] == "2"
    described = subprocess.run(["kubectl", "get", "alloc", "from-kubectl", "-o", "json"],
                               env=env, check=True, capture_output=True, text=True).stdout
    assert json.loads(described)["spec"]["slots"] == 2
