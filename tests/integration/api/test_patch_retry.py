"""PATCH retries a lost compare-and-swap on the server, as kube-apiserver's
GuaranteedUpdate does: concurrent patches without a precondition all land; a
patch that carries its own resourceVersion is held to it."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from tests.cluster import Master

CLIENTS = 20
PATCHES_EACH = 10
MERGE = {"Content-Type": "application/merge-patch+json"}


def _url(name: str) -> str:
    return f"/api/v1/namespaces/default/configmaps/{name}"


async def _patch_many(m: Master, name: str, client_no: int) -> list[tuple[int, str]]:
    codes = []
    async with httpx.AsyncClient(base_url=m.url, verify=str(m.ca_path), timeout=60,
                                 headers={"Authorization": f"Bearer {m.token}"}) as http:
        for i in range(PATCHES_EACH):
            body = {"data": {f"c{client_no}-{i}": str(i)}}
            r = await http.patch(_url(name), content=json.dumps(body), headers=MERGE)
            codes.append((r.status_code, r.text if r.status_code != 200 else ""))
    return codes


def test_concurrent_patches_without_precondition_all_land(quiet_master: Master) -> None:
    name = f"shared-{uuid.uuid4().hex[:6]}"
    with quiet_master.http() as api:
        r = api.post("/api/v1/namespaces/default/configmaps",
                     json={"metadata": {"name": name}, "data": {}})
        assert r.status_code == 201, r.text

    async def all_clients() -> list[tuple[int, str]]:
        results = await asyncio.gather(*(_patch_many(quiet_master, name, c)
                                         for c in range(CLIENTS)))
        return [code for codes in results for code in codes]

    answers = asyncio.run(all_clients())
    assert [a for a in answers if a[0] != 200] == []
    with quiet_master.http() as api:
        data = api.get(_url(name)).json()["data"]
    assert len(data) == CLIENTS * PATCHES_EACH
    assert all(data[f"c{c}-{i}"] == str(i) for c in range(CLIENTS) for i in range(PATCHES_EACH))


def test_patch_with_a_stale_resource_version_conflicts(quiet_master: Master) -> None:
    name = f"held-{uuid.uuid4().hex[:6]}"
    with quiet_master.http() as api:
        created = api.post("/api/v1/namespaces/default/configmaps",
                           json={"metadata": {"name": name}, "data": {"a": "1"}}).json()
        stale = created["metadata"]["resourceVersion"]
        r = api.patch(_url(name), content=json.dumps({"data": {"a": "2"}}), headers=MERGE)
        assert r.status_code == 200
        for content_type, body in (
            ("application/merge-patch+json",
             {"metadata": {"resourceVersion": stale}, "data": {"a": "3"}}),
            ("application/strategic-merge-patch+json",
             {"metadata": {"resourceVersion": stale}, "data": {"a": "3"}}),
            ("application/json-patch+json",
             [{"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
              {"op": "replace", "path": "/data/a", "value": "3"}]),
        ):
            r = api.patch(_url(name), content=json.dumps(body),
                          headers={"Content-Type": content_type})
            assert r.status_code == 409, (content_type, r.text)
            assert r.json()["reason"] == "Conflict"
        assert api.get(_url(name)).json()["data"] == {"a": "2"}
        current = api.get(_url(name)).json()["metadata"]["resourceVersion"]
        r = api.patch(_url(name), headers=MERGE, content=json.dumps(
            {"metadata": {"resourceVersion": current}, "data": {"a": "4"}}))
        assert r.status_code == 200 and r.json()["data"] == {"a": "4"}
