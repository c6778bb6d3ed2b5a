"""The in-process scheduler of a real `corral master`: binding, the FitError
message (Event and condition), re-queueing on node join, priority classes and
preemption end to end. Nodes are posted through the API; no agents run, so the
test finishes a preempted pod's graceful deletion itself, as its agent would."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.api.errors import Forbidden
from corral.client.http import Client
from tests.cluster import Master
from tests.integration.scheduler.helpers import condition, events_for, node_of, pod, requested_cpu
from tests.manifests import node
from tests.poll import eventually


@pytest.fixture
def master(tmp_path: Path) -> Iterator[Master]:
    # No controllers: the nodes here are API data without an agent's Lease, which
    # the node lifecycle controller would (rightly) mark NotReady.
    m = Master(tmp_path / "master", extra_args=["--disable", "controllers"]).start()
    try:
        yield m
    finally:
        m.stop()


async def test_pods_are_bound_within_node_capacity(client: Client) -> None:
    for name in ("n1", "n2", "n3"):
        await client.create(node(name, cpu="2"))
    for i in range(6):
        await client.create(pod(f"p{i}", cpu="1"))

    async def all_bound() -> list[dict[str, object]] | None:
        pods = (await client.list("Pod", "default")).items
        return pods if all(p["spec"].get("nodeName") for p in pods) else None

    pods = await eventually(all_bound, what="every pod bound")
    per_node: dict[str, int] = defaultdict(int)
    for p in pods:
        per_node[p["spec"]["nodeName"]] += requested_cpu(p)
        assert condition(p)["status"] == "True"
    assert dict(per_node) == {"n1": 2000, "n2": 2000, "n3": 2000}
    p0_node = await node_of(client, "p0")

    async def scheduled_event() -> list[dict[str, object]]:
        return await events_for(client, "p0", reason="Scheduled")

    event = (await eventually(scheduled_event, what="Scheduled event"))[0]
    assert event["message"] == f"Successfully assigned default/p0 to {p0_node}"
    assert event["type"] == "Normal" and event["count"] == 1


async def test_other_scheduler_names_are_left_alone(client: Client) -> None:
    await client.create(node("n1"))
    await client.create(pod("mine", scheduler_name="corral"))
    await client.create(pod("theirs", scheduler_name="gpu-scheduler"))
    await eventually(lambda: node_of(client, "mine"), what="mine bound")
    assert await node_of(client, "theirs") == ""
    assert await events_for(client, "theirs") == []


async def test_unschedulable_pod_gets_the_message_then_lands_when_a_node_joins(
        client: Client) -> None:
    await client.create(node("small-1", cpu="1"))
    await client.create(node("small-2", cpu="1"))
    await client.create(node("gpu-1", cpu="8", taints=[
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    await client.create(pod("big", cpu="2"))
    expected = ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                "2 Insufficient cpu. preemption: 0/3 nodes are available: "
                "1 Preemption is not helpful for scheduling, "
                "2 No preemption victims found for incoming pod.")

    async def failed_event() -> list[dict[str, object]]:
        return await events_for(client, "big", reason="FailedScheduling")

    event = (await eventually(failed_event, what="FailedScheduling event"))[0]
    assert event["message"] == expected
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "Pod"
    assert event["involvedObject"]["uid"]
    assert event["source"] == {"component": "default-scheduler"}
    assert event["reportingComponent"] == "default-scheduler"
    assert event["count"] >= 1 and event["firstTimestamp"] and event["lastTimestamp"]

    async def unschedulable() -> dict[str, object]:
        cond = condition(await client.get("Pod", "big", "default"))
        return cond if cond.get("reason") == "Unschedulable" else {}

    cond = await eventually(unschedulable, what="PodScheduled=False")
    assert cond["status"] == "False" and cond["message"] == expected

    async def counted_again() -> bool:
        events = await failed_event()
        return len(events) == 1 and int(events[0]["count"]) >= 2

    await eventually(counted_again, what="the retry counted on the same Event")
    await client.create(node("large-1", cpu="4"))
    assert await eventually(lambda: node_of(client, "big"), what="big bound") == "large-1"
    assert condition(await client.get("Pod", "big", "default"))["status"] == "True"


async def test_priority_classes_resolve(client: Client) -> None:
    classes = {pc["metadata"]["name"]: pc["value"]
               for pc in (await client.list("PriorityClass")).items}
    assert classes == {"monitoring": 1_000_000, "production": 100_000, "batch": 1_000,
                       "best-effort": 0}
    created = await client.create(pod("prod", priority_class="production"))
    assert created["spec"]["priority"] == 100_000
    assert created["spec"]["preemptionPolicy"] == "PreemptLowerPriority"
    plain = await client.create(pod("plain"))
    assert plain["spec"]["priority"] == 0 and "priorityClassName" not in plain["spec"]

    with pytest.raises(Forbidden) as err:
        await client.create(pod("typo", priority_class="prodution"))
    assert err.value.message == ('pods "typo" is forbidden: no PriorityClass with name '
                                 'prodution was found')
    with pytest.raises(Forbidden) as err:
        await client.create(pod("liar", priority_class="batch", extra_spec={"priority": 7}))
    assert "the integer value of priority (7) must not be provided" in err.value.message

    await client.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                         "metadata": {"name": "house-default"}, "value": 500,
                         "globalDefault": True, "preemptionPolicy": "Never"})
    defaulted = await client.create(pod("defaulted"))
    assert defaulted["spec"]["priority"] == 500
    assert defaulted["spec"]["priorityClassName"] == "house-default"
    assert defaulted["spec"]["preemptionPolicy"] == "Never"
    with pytest.raises(Forbidden) as err:
        await client.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                             "metadata": {"name": "second-default"}, "value": 5,
                             "globalDefault": True})
    assert "PriorityClass house-default is already marked as default" in err.value.message


async def finish_terminating(client: Client) -> int:
    """What an agent does for a gracefully deleted pod once it stopped: delete it
    with grace 0. Returns how many it finished."""
    finished = 0
    for p in (await client.list("Pod", "default")).items:
        if p["metadata"].get("deletionTimestamp"):
            await client.delete("Pod", p["metadata"]["name"], "default",
                                grace_period_seconds=0)
            finished += 1
    return finished


async def test_preemption_evicts_the_lowest_band_and_binds_the_preemptor(
        client: Client) -> None:
    await client.create(node("only", cpu="3"))
    await client.create(pod("batch-1", cpu="1", priority_class="batch"))
    await client.create(pod("free-1", cpu="1", priority_class="best-effort"))
    await client.create(pod("free-2", cpu="1", priority_class="best-effort"))
    for name in ("batch-1", "free-1", "free-2"):
        await eventually(lambda n=name: node_of(client, n), what=f"{name} bound")  # type: ignore[misc]

    preemptor = await client.create(pod("prod", cpu="2", priority_class="production"))

    async def nominated() -> str:
        p = await client.get("Pod", "prod", "default")
        return str(p.get("status", {}).get("nominatedNodeName") or "")

    assert await eventually(nominated, what="nominatedNodeName") == "only"
    victims = {p["metadata"]["name"] for p in (await client.list("Pod", "default")).items
               if p["metadata"].get("deletionTimestamp")}
    assert victims == {"free-1", "free-2"}  # the smallest set of the lowest band
    event = (await events_for(client, "free-1", reason="Preempted"))[0]
    assert event["message"] == (f"Preempted by pod {preemptor['metadata']['uid']} "
                                "on node only")
    assert await node_of(client, "prod") == ""  # victims still stopping: no second round
    assert await finish_terminating(client) == 2
    assert await eventually(lambda: node_of(client, "prod"), what="prod bound") == "only"
    assert await node_of(client, "batch-1") == "only"


async def test_production_band_is_never_preempted_by_its_own_band(client: Client) -> None:
    await client.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                         "metadata": {"name": "production-high"}, "value": 200_000})
    await client.create(node("only", cpu="2"))
    await client.create(pod("serving", cpu="2", priority_class="production"))
    await eventually(lambda: node_of(client, "serving"), what="serving bound")
    await client.create(pod("urgent", cpu="2", priority_class="production-high"))

    async def failed() -> list[dict[str, object]]:
        return await events_for(client, "urgent", reason="FailedScheduling")

    event = (await eventually(failed, what="FailedScheduling"))[0]
    assert event["message"] == ("0/1 nodes are available: 1 Insufficient cpu. preemption: "
                                "0/1 nodes are available: 1 No preemption victims found for "
                                "incoming pod.")
    serving = await client.get("Pod", "serving", "default")
    assert not serving["metadata"].get("deletionTimestamp")


async def test_pod_affinity_waits_for_its_partner_and_joins_it(client: Client) -> None:
    """A web pod that must share a node with a cache pod is Unschedulable until the
    cache is bound, is tried again as soon as it is (not at its next back-off,
    seconds later), and lands on the cache's node."""
    import time

    for name in ("n1", "n2", "n3"):
        await client.create(node(name))
    together = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "cache"}},
        "topologyKey": "kubernetes.io/hostname"}]}}
    web = pod("web", extra_spec={"affinity": together})
    web["metadata"]["labels"] = {"app": "web"}
    await client.create(web)

    async def failed_three_times() -> bool:
        events = await events_for(client, "web", reason="FailedScheduling")
        return bool(events) and int(events[0]["count"]) >= 3

    # Attempts at 0, 1 and 3 s: the next back-off retry is 4 s away.
    await eventually(failed_three_times, what="three failed attempts")
    events = await events_for(client, "web", reason="FailedScheduling")
    assert events[0]["message"] == (
        "0/3 nodes are available: 3 node(s) didn't match pod affinity rules. preemption: "
        "0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    cache = pod("cache")
    cache["metadata"]["labels"] = {"app": "cache"}
    await client.create(cache)
    cache_node = await eventually(lambda: node_of(client, "cache"), what="cache bound")
    bound_at = time.monotonic()
    assert await eventually(lambda: node_of(client, "web"), timeout=20.0,
                            what="web bound") == cache_node
    assert time.monotonic() - bound_at < 3.0, "woken by the partner's binding"
