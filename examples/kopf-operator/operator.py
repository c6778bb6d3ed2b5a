"""A kopf operator for WebApps (webapp-crd.yaml): each WebApp gets a Deployment
it owns, its status names that Deployment, and deleting the WebApp deletes the
Deployment first (kopf holds the WebApp with its finalizer until then).

    kubectl apply -f webapp-crd.yaml
    kopf run --standalone --namespace default operator.py
    kubectl apply -f webapp.yaml; kubectl get webapps
"""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes

GROUP, VERSION, PLURAL = "demo.corral.dev", "v1", "webapps"


def _apps() -> kubernetes.client.AppsV1Api:
    kubernetes.config.load_kube_config()
    return kubernetes.client.AppsV1Api()


def _deployment(name: str, spec: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "webapp"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": spec.get("replicas", 1),
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                {"name": "app", "image": "none", "command": list(spec["command"])}]}},
        },
    }


@kopf.on.create(GROUP, VERSION, PLURAL)
def create(spec: Any, name: str, namespace: str, patch: kopf.Patch, **_: Any) -> None:
    deployment = _deployment(name, spec)
    kopf.adopt(deployment)  # owner reference and namespace: the WebApp's
    _apps().create_namespaced_deployment(namespace, deployment)
    patch.status["deployment"] = name
    patch.status["phase"] = "Deployed"


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec.replicas")
def rescale(new: Any, name: str, namespace: str, patch: kopf.Patch, **_: Any) -> None:
    _apps().patch_namespaced_deployment(name, namespace, {"spec": {"replicas": new}})
    patch.status["replicas"] = new


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete(name: str, namespace: str, **_: Any) -> None:
    try:
        _apps().delete_namespaced_deployment(name, namespace)
    except kubernetes.client.ApiException as err:
        if err.status != 404:
            raise
