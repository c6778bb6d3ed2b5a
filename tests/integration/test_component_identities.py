"""The scheduler and the controllers act as system:kube-scheduler and
system:kube-controller-manager — in-process in `corral master` and as their own
processes with the kubeconfigs the master writes for them — and can do only
what their ClusterRoles allow. The separate processes at work under their own
identities are checked in test_component_metrics.py, with their metrics: one pair
of processes on one master for both."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.cluster import Master


def _api(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def _refused(call: Callable[[], object]) -> str:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 403, err.value.body
    return str(json.loads(err.value.body)["message"])


def _whoami(api: client.ApiClient) -> str:
    review = client.AuthenticationV1Api(api).create_self_subject_review(
        client.V1SelfSubjectReview())
    return str(review.status.user_info.username)


def test_each_component_is_held_to_its_role(master: Master) -> None:
    controllers = _api(master.data_dir / "controllers.kubeconfig")
    scheduler = _api(master.data_dir / "scheduler.kubeconfig")
    assert _whoami(controllers) == "system:kube-controller-manager"
    assert _whoami(scheduler) == "system:kube-scheduler"
    core, rbac = client.CoreV1Api(controllers), client.RbacAuthorizationV1Api(controllers)
    assert core.list_namespaced_pod("default").items is not None
    assert ('secrets is forbidden: User "system:kube-controller-manager" cannot create '
            'resource "secrets" in API group "" in the namespace "default"') in _refused(
        lambda: core.create_namespaced_secret("default", client.V1Secret(
            metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"})))
    assert 'cannot create resource "clusterrolebindings"' in _refused(
        lambda: rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name="mine"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io",
                                      kind="ClusterRole", name="cluster-admin"),
            subjects=[client.RbacV1Subject(kind="User", name="system:kube-controller-manager",
                                           api_group="rbac.authorization.k8s.io")])))
    assert 'cannot create resource "serviceaccounts/token"' in _refused(
        lambda: core.create_namespaced_service_account_token("default", "default",
                                                             client.AuthenticationV1TokenRequest(
                                                                 spec=client.V1TokenRequestSpec(
                                                                     audiences=[]))))
    sched = client.CoreV1Api(scheduler)
    assert 'User "system:kube-scheduler" cannot list resource "secrets"' in _refused(
        lambda: sched.list_namespaced_secret("kube-system"))
    assert 'User "system:kube-scheduler" cannot create resource "pods"' in _refused(
        lambda: sched.create_namespaced_pod("default", client.V1Pod(
            metadata=client.V1ObjectMeta(name="p"), spec=client.V1PodSpec(
                containers=[client.V1Container(name="c", image="x")]))))
    assert 'cannot delete resource "nodes"' in _refused(lambda: sched.delete_node("any"))
