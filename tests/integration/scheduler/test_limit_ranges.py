"""LimitRange and the LimitRanger admission plugin against a real `corral master`
(its scheduler and controllers disabled: admission is the API server's
business), with corral's client and the real kubectl. Each test works in its
own namespace."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator

import pytest

from corral.api.errors import Forbidden, Invalid
from corral.client.http import Client
from corral.objects import Obj
from tests.cluster import Master
from tests.integration.scheduler.helpers import pod
from tests.kubectl import Kubectl
from tests.manifests import container, namespace, quota
from tests.manifests import pod as bare_pod

_names = itertools.count()


@pytest.fixture
async def client(quiet_master: Master) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(quiet_master.kubeconfig) as c:
        yield c


@pytest.fixture(scope="module")
def kubectl(quiet_master: Master, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(quiet_master, tmp_path_factory.mktemp("kubecache"))


@pytest.fixture
async def ns(client: Client) -> str:
    name = f"lr{next(_names)}"
    await client.create(namespace(name))
    return name


def limit_range(name: str, ns: str, *limits: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": name, "namespace": ns}, "spec": {"limits": list(limits)}}


def resources_of(obj: Obj, key: str = "containers") -> list[Obj]:
    return [c.get("resources") for c in obj["spec"][key]]


DEFAULTS = {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "200m", "memory": "128Mi"}}


async def test_defaults_fill_pods_and_quota_charges_them(client: Client, ns: str) -> None:
    await client.create(limit_range("defaults", ns, DEFAULTS))
    # A quota on limits too: every container must then have limits, which the
    # LimitRange gives it (Kubernetes' must-specify rule).
    await client.create(quota("compute", ns, {"requests.cpu": "1", "requests.memory": "1Gi",
                                              "limits.cpu": "2"}))
    plain = bare_pod("plain", namespace=ns, containers=[container(name="app")],
                     initContainers=[container(name="setup")])
    created = await client.create(plain)
    both = {"requests": {"cpu": "200m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert resources_of(created) == [both]
    assert resources_of(created, "initContainers") == [both]
    assert created["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit "
        "for container app; cpu, memory request for init container setup; cpu, memory "
        "limit for init container setup")
    used = (await client.get("ResourceQuota", "compute", ns))["status"]["used"]
    assert used == {"limits.cpu": "500m", "requests.cpu": "200m", "requests.memory": "128Mi"}

    # A limit without a request requests the limit, not the LimitRange's default.
    capped = bare_pod("capped", namespace=ns, containers=[container(
        name="app", resources={"limits": {"cpu": "300m"}})])
    created = await client.create(capped)
    assert resources_of(created) == [{"requests": {"cpu": "300m", "memory": "128Mi"},
                                      "limits": {"cpu": "300m", "memory": "256Mi"}}]
    assert created["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: memory request for container app; memory limit for "
        "container app")
    used = (await client.get("ResourceQuota", "compute", ns))["status"]["used"]
    assert used == {"limits.cpu": "800m", "requests.cpu": "500m", "requests.memory": "256Mi"}

    # A request above the default limit is Invalid once the limit is filled in.
    with pytest.raises(Invalid) as err:
        await client.create(pod("greedy", cpu="800m", memory="64Mi", namespace=ns))
    assert err.value.message.endswith(
        'spec.containers[0].resources.requests[cpu]: Invalid value: "800m": must be less than '
        "or equal to cpu limit of 500m")


async def test_pod_updates_are_not_defaulted_again(client: Client, ns: str) -> None:
    await client.create(pod("early", cpu="50m", namespace=ns))
    await client.create(limit_range("strict", ns, {"type": "Container", "min": {"cpu": "100m"}}))
    patched = await client.patch("Pod", "early", {"metadata": {"labels": {"a": "b"}}}, ns)
    assert resources_of(patched) == [{"requests": {"cpu": "50m", "memory": "64Mi"}}]
    assert "annotations" not in patched["metadata"]


async def test_several_limit_ranges_all_apply(client: Client, ns: str) -> None:
    await client.create(limit_range("a-cpu", ns, {"type": "Container",
                                                  "defaultRequest": {"cpu": "100m"}}))
    await client.create(limit_range("b-memory", ns, {"type": "Container",
                                                     "max": {"memory": "1Gi"}}))
    created = await client.create(bare_pod("both", namespace=ns,
                                           containers=[container(name="app")]))
    assert resources_of(created) == [{"requests": {"cpu": "100m", "memory": "1Gi"},
                                      "limits": {"memory": "1Gi"}}]
    with pytest.raises(Forbidden) as err:
        await client.create(pod("big", cpu="100m", memory="2Gi", limits=True, namespace=ns))
    assert err.value.message == ('pods "big" is forbidden: maximum memory usage per '
                                 'Container is 1Gi, but limit is 2Gi')


async def test_pod_type_bounds_the_sum(client: Client, ns: str) -> None:
    await client.create(limit_range("per-pod", ns, {"type": "Pod", "max": {"cpu": "1"}},
                                    {"type": "Container", "max": {"cpu": "800m"}}))
    half: Obj = {"requests": {"cpu": "600m"}, "limits": {"cpu": "600m"}}
    one = bare_pod("one", namespace=ns, containers=[container(name="a", resources=half)])
    await client.create(one)
    two = bare_pod("two", namespace=ns, containers=[container(name="a", resources=half),
                                                    container(name="b", resources=half)])
    with pytest.raises(Forbidden) as err:
        await client.create(two)
    assert err.value.message == ('pods "two" is forbidden: maximum cpu usage per Pod is 1, '
                                 'but limit is 1200m')


async def test_bad_limit_ranges_name_the_field(client: Client, ns: str) -> None:
    bad = limit_range("bad", ns,
                      {"type": "Pod", "min": {"cpu": "2"}, "max": {"cpu": "1"},
                       "maxLimitRequestRatio": {"memory": "500m"}, "default": {"cpu": "1"}},
                      {"type": "Container", "defaultRequest": {"memory": "1Gi"},
                       "default": {"memory": "512Mi"}},
                      {"type": "Container"},
                      {"type": "Node"})
    with pytest.raises(Invalid) as err:
        await client.create(bad)
    assert [(c.field, c.message) for c in err.value.causes] == [
        ("spec.limits[0].default", "Forbidden: may not be specified when `type` is 'Pod'"),
        ("spec.limits[0].min[cpu]", ('Invalid value: "2": min value 2 is greater than max '
                                    "value 1")),
        ("spec.limits[0].maxLimitRequestRatio[memory]",
         'Invalid value: "500m": ratio 500m is less than 1'),
        ("spec.limits[1].defaultRequest[memory]", ('Invalid value: "1Gi": default request '
                                                  "value 1Gi is greater than default limit "
                                                  "value 512Mi")),
        ("spec.limits[2].type", 'Duplicate value: "Container"'),
        ("spec.limits[3].type", ('Invalid value: "Node": must be a standard limit type or '
                                "fully qualified")),
    ]
    with pytest.raises(Invalid) as err:
        await client.create(limit_range("worse", ns, {"type": "Container",
                                                      "max": {"cpu": "lots"}}))
    assert [c.field for c in err.value.causes] == ["spec.limits[0].max[cpu]"]


async def test_kubectl_runs_applies_gets_and_describes(kubectl: Kubectl, ns: str) -> None:
    manifest = limit_range("bounds", ns, {"type": "Container", "min": {"cpu": "100m"},
                                          "max": {"memory": "1Gi"}})
    assert kubectl("apply", "-f", "-", input=json.dumps(manifest)).strip() == \
        "limitrange/bounds created"

    # min gives the default request and max the default limit: a bare pod fits.
    kubectl("run", "fits", "-n", ns, "--image=busybox", "--restart=Never")
    fits = json.loads(kubectl("get", "pod", "fits", "-n", ns, "-o", "json"))
    assert resources_of(fits) == [{"requests": {"cpu": "100m", "memory": "1Gi"},
                                   "limits": {"memory": "1Gi"}}]

    over = {"spec": {"containers": [{"name": "over", "image": "busybox", "resources": {
        "requests": {"cpu": "50m"}, "limits": {"memory": "2Gi"}}}]}}
    refused = kubectl.run("run", "over", "-n", ns, "--image=busybox", "--restart=Never",
                          f"--overrides={json.dumps(over)}")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        'Error from server (Forbidden): pods "over" is forbidden: [minimum cpu usage per '
        "Container is 100m, but request is 50m, maximum memory usage per Container is 1Gi, "
        "but limit is 2Gi]")

    bad = limit_range("bad", ns, {"type": "Pod", "min": {"cpu": "2"}, "max": {"cpu": "1"}})
    refused = kubectl.run("apply", "-f", "-", input=json.dumps(bad))
    assert 'The LimitRange "bad" is invalid: spec.limits[0].min[cpu]: Invalid value: "2": ' \
        "min value 2 is greater than max value 1" in refused.stderr

    table = kubectl("get", "limits", "-n", ns).splitlines()
    assert table[0].split() == ["NAME", "CREATED", "AT"]
    assert table[1].split()[0] == "bounds" and table[1].split()[1].endswith("Z")
    described = kubectl("describe", "limitrange", "bounds", "-n", ns)
    assert "Namespace:  " + ns in described
    rows = [line.split() for line in described.splitlines()]
    assert ["Container", "cpu", "100m", "-", "100m", "-", "-"] in rows
    assert ["Container", "memory", "-", "1Gi", "1Gi", "1Gi", "-"] in rows
    # kubectl describe namespace lists its LimitRanges under Resource Limits.
    described = kubectl("describe", "namespace", ns)
    assert "Resource Limits" in described
    assert ["Container", "memory", "-", "1Gi", "1Gi", "1Gi", "-"] in [
        line.split() for line in described.splitlines()]
