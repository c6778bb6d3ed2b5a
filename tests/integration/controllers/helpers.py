"""Helpers for controller tests against a real `corral master` (over httpx):
manifests, polling until a condition holds, and the corral CLI as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx

from corral.objects import Obj
from tests import manifests
from tests.cluster import Master

APPS = "/apis/apps/v1/namespaces"
CORE = "/api/v1/namespaces"


def template(app: str, image: str = "v1", command: list[str] | None = None,
             **extra: Any) -> Obj:
    """The controllers' tests' pods: image names the version, a 2 s grace period."""
    return manifests.pod_template(
        {"app": app}, containers=[manifests.container(command or ["sleep", "300"],
                                                      image=image, **extra)],
        terminationGracePeriodSeconds=2)


def deployment(name: str, replicas: int = 3, image: str = "v1", **spec: Any) -> Obj:
    return manifests.deployment(name, replicas, template=template(name, image), **spec)


def replica_set(name: str, replicas: int = 3) -> Obj:
    return manifests.replica_set(name, replicas, template=template(name))


def items(http: httpx.Client, path: str, selector: str | None = None) -> list[Obj]:
    params = {"labelSelector": selector} if selector else {}
    r = http.get(path, params=params)
    r.raise_for_status()
    return list(r.json()["items"])


def get(http: httpx.Client, path: str) -> Obj | None:
    r = http.get(path)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return dict(r.json())


def create(http: httpx.Client, path: str, body: Obj) -> Obj:
    r = http.post(path, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def merge_patch(http: httpx.Client, path: str, patch: Obj) -> Obj:
    r = http.patch(path, json=patch, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def pods(http: httpx.Client, namespace: str, app: str, active_only: bool = True) -> list[Obj]:
    found = items(http, f"{CORE}/{namespace}/pods", f"app={app}")
    if active_only:
        found = [p for p in found if not p["metadata"].get("deletionTimestamp")]
    return found


def owned_by(obj: Obj, uid: str) -> bool:
    return any(r.get("uid") == uid and r.get("controller")
               for r in obj["metadata"].get("ownerReferences") or [])


def corral(master: Master, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args,
                           "--kubeconfig", str(master.kubeconfig)],
                          check=False, capture_output=True, text=True, timeout=timeout)


def namespace(http: httpx.Client, name: str) -> str:
    r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": name}})
    assert r.status_code in (201, 409), r.text
    return name
