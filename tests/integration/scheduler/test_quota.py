"""ResourceQuota admission against a real `corral master` (its scheduler disabled:
quota is the API server's business). Each test works in its own namespace."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from corral.api.errors import Forbidden
from corral.client.http import Client
from corral.controllers.quota import reconcile_quota
from tests.cluster import Master
from tests.integration.scheduler.helpers import pod
from tests.manifests import namespace, quota

_names = itertools.count()


@pytest.fixture
async def client(quiet_master: Master) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(quiet_master.kubeconfig) as c:
        yield c


@pytest.fixture
async def ns(client: Client) -> str:
    name = f"q{next(_names)}"
    await client.create(namespace(name))
    return name


async def used(client: Client, ns: str, name: str = "compute") -> dict[str, str]:
    return dict((await client.get("ResourceQuota", name, ns))["status"]["used"])


async def test_exceeding_requests_is_forbidden_with_kubernetes_wording(client: Client,
                                                                       ns: str) -> None:
    created = await client.create(quota("compute", ns, {"requests.cpu": "2",
                                                        "requests.memory": "1Gi",
                                                        "pods": "3"}))
    assert created["status"] == {"hard": {"requests.cpu": "2", "requests.memory": "1Gi",
                                          "pods": "3"},
                                 "used": {"pods": "0", "requests.cpu": "0",
                                          "requests.memory": "0"}}
    await client.create(pod("a", cpu="1", memory="256Mi", namespace=ns))
    with pytest.raises(Forbidden) as err:
        await client.create(pod("b", cpu="2", memory="256Mi", namespace=ns))
    assert err.value.message == ('pods "b" is forbidden: exceeded quota: compute, '
                                 'requested: requests.cpu=2, used: requests.cpu=1, '
                                 'limited: requests.cpu=2')
    assert await used(client, ns) == {"pods": "1", "requests.cpu": "1",
                                      "requests.memory": "256Mi"}

    await client.delete("Pod", "a", ns)  # unbound: removed at once, its usage freed
    assert await used(client, ns) == {"pods": "0", "requests.cpu": "0", "requests.memory": "0"}
    await client.create(pod("b", cpu="2", memory="256Mi", namespace=ns))
    assert await used(client, ns) == {"pods": "1", "requests.cpu": "2",
                                      "requests.memory": "256Mi"}


async def test_several_resources_over_are_listed_sorted(client: Client, ns: str) -> None:
    await client.create(quota("compute", ns, {"requests.cpu": "1", "requests.memory": "1Gi"}))
    with pytest.raises(Forbidden) as err:
        await client.create(pod("huge", cpu="1500m", memory="1536Mi", namespace=ns))
    assert err.value.message.endswith(
        "exceeded quota: compute, requested: requests.cpu=1500m,requests.memory=1536Mi, "
        "used: requests.cpu=0,requests.memory=0, limited: requests.cpu=1,requests.memory=1Gi")


async def test_limits_quota_demands_limits(client: Client, ns: str) -> None:
    await client.create(quota("compute", ns, {"limits.cpu": "4", "limits.memory": "4Gi"}))
    with pytest.raises(Forbidden) as err:
        await client.create(pod("nolimits", namespace=ns))
    assert err.value.message == ('pods "nolimits" is forbidden: failed quota: compute: must '
                                 'specify limits.cpu for: app; limits.memory for: app')
    await client.create(pod("limited", cpu="1", memory="1Gi", limits=True, namespace=ns))
    assert await used(client, ns) == {"limits.cpu": "1", "limits.memory": "1Gi"}


async def test_object_counts(client: Client, ns: str) -> None:
    await client.create(quota("objects", ns, {"count/deployments.apps": "1", "configmaps": "1"}))
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "web", "namespace": ns},
                  "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": pod("x")["spec"]}}}
    await client.create(deployment)
    with pytest.raises(Forbidden) as err:
        await client.create({**deployment, "metadata": {"name": "web2", "namespace": ns}})
    assert err.value.message == ('deployments.apps "web2" is forbidden: exceeded quota: '
                                 'objects, requested: count/deployments.apps=1, used: '
                                 'count/deployments.apps=1, limited: count/deployments.apps=1')
    await client.create({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "one", "namespace": ns}})
    with pytest.raises(Forbidden):
        await client.create({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "two", "namespace": ns}})
    assert await used(client, ns, "objects") == {"configmaps": "1",
                                                 "count/deployments.apps": "1"}


async def test_concurrent_creates_never_both_take_the_last_unit(client: Client,
                                                                ns: str) -> None:
    await client.create(quota("compute", ns, {"pods": "5"}))
    results = await asyncio.gather(*(client.create(pod(f"p{i}", namespace=ns))
                                     for i in range(20)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, Forbidden)]
    assert len(refused) == 15 and len(results) - len(refused) == 5
    assert len((await client.list("Pod", ns)).items) == 5
    assert await used(client, ns) == {"pods": "5"}


async def test_quota_created_later_counts_what_exists(client: Client, ns: str) -> None:
    for i in range(3):
        await client.create(pod(f"p{i}", cpu="250m", namespace=ns))
    created = await client.create(quota("compute", ns, {"pods": "10", "cpu": "2"}))
    assert created["status"]["used"] == {"cpu": "750m", "pods": "3"}


async def test_finished_pods_free_their_quota(client: Client, ns: str) -> None:
    await client.create(quota("compute", ns, {"pods": "1"}))
    done = await client.create(pod("job", namespace=ns))
    with pytest.raises(Forbidden):
        await client.create(pod("next", namespace=ns))
    done["status"] = {**done.get("status", {}), "phase": "Succeeded"}
    await client.update_status(done)
    assert await used(client, ns) == {"pods": "0"}
    await client.create(pod("next", namespace=ns))
    assert await used(client, ns) == {"pods": "1"}


async def test_scoped_quota_per_priority_band(client: Client, ns: str) -> None:
    await client.create(quota("production", ns, {"pods": "1"}, scopeSelector={
        "matchExpressions": [{"scopeName": "PriorityClass", "operator": "In",
                              "values": ["production"]}]}))
    await client.create(pod("serving", priority_class="production", namespace=ns))
    with pytest.raises(Forbidden):
        await client.create(pod("serving-2", priority_class="production", namespace=ns))
    await client.create(pod("batch-1", priority_class="batch", namespace=ns))  # not covered
    assert await used(client, ns, "production") == {"pods": "1"}


async def test_reconcile_quota_recounts_from_what_exists(client: Client, ns: str) -> None:
    await client.create(quota("compute", ns, {"pods": "5", "requests.cpu": "4"}))
    await client.create(pod("a", cpu="1", namespace=ns))
    drifted = await client.get("ResourceQuota", "compute", ns)
    drifted["status"]["used"] = {"pods": "4", "requests.cpu": "3"}
    await client.update_status(drifted)
    assert await used(client, ns) == {"pods": "4", "requests.cpu": "3"}
    await reconcile_quota(client, ns, "compute")
    assert await used(client, ns) == {"pods": "1", "requests.cpu": "1"}


async def test_dry_runs_are_checked_but_never_charged(client: Client, ns: str) -> None:
    """kubectl --dry-run=server: admission decides as for a real create (the last
    unit is still refused) but the quota's usage never moves."""
    path = f"/api/v1/namespaces/{ns}/pods"
    await client.create(quota("compute", ns, {"pods": "2", "requests.cpu": "1"}))
    for i in range(3):  # more dry runs than the quota holds: none takes a unit
        await client.raw("POST", path, params={"dryRun": "All"},
                         json_body=pod(f"dry{i}", cpu="500m", namespace=ns))
    assert await used(client, ns) == {"pods": "0", "requests.cpu": "0"}
    await client.create(pod("real", cpu="1", namespace=ns))
    with pytest.raises(Forbidden):  # over requests.cpu: refused though it is a dry run
        await client.raw("POST", path, params={"dryRun": "All"},
                         json_body=pod("dry-over", cpu="500m", namespace=ns))
    assert await used(client, ns) == {"pods": "1", "requests.cpu": "1"}
    done = await client.get("Pod", "real", ns)
    done["status"] = {**done.get("status", {}), "phase": "Succeeded"}
    await client.raw("PUT", f"{path}/real/status", params={"dryRun": "All"}, json_body=done)
    assert await used(client, ns) == {"pods": "1", "requests.cpu": "1"}  # no refund either
    assert [p["metadata"]["name"] for p in (await client.list("Pod", ns)).items] == ["real"]
