"""RBAC with the real kubectl and the real `kubernetes` client: a user without
bindings is refused with Kubernetes' words, a Role and RoleBinding open one
namespace, `auth can-i --list` reports the bindings, the built-in view role is
aggregated, and `--as` works only for callers allowed to impersonate."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.cluster import Master, wait_for
from tests.kubectl import Kubectl


@pytest.fixture(scope="module")
def user_token(master: Master) -> Callable[[str], str]:
    def add(name: str) -> str:
        token = secrets.token_urlsafe(16)
        with open(master.data_dir / "token", "a") as tokens:  # read again on change
            tokens.write(f"{token},{name},u-{name},\n")
        return token
    return add


def _refused(kubectl: Kubectl, *args: str) -> str:
    proc = kubectl.run(*args)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def test_a_role_binding_opens_one_namespace(kubectl: Kubectl,
                                            user_token: Callable[[str], str]) -> None:
    jane = user_token("jane")
    assert ('pods is forbidden: User "jane" cannot list resource "pods" in API group "" in '
            'the namespace "default"') in _refused(kubectl, "--token", jane, "get", "pods")
    kubectl("create", "namespace", "team")
    # The generators POST protobuf bodies.
    kubectl("create", "role", "pod-reader", "-n", "team", "--verb=get,list,watch",
            "--resource=pods")
    # (before jane-reads: the wait below then covers it too)
    kubectl("create", "role", "one-secret", "-n", "team", "--verb=get", "--resource=secrets",
            "--resource-name=s1")
    kubectl("create", "rolebinding", "jane-s1", "-n", "team", "--role=one-secret",
            "--user=jane")
    kubectl("create", "rolebinding", "jane-reads", "-n", "team", "--role=pod-reader",
            "--user=jane")
    wait_for(lambda: kubectl.run("--token", jane, "get", "pods", "-n", "team").returncode == 0,
             what="jane may list pods in team")
    assert 'in the namespace "default"' in _refused(kubectl, "--token", jane, "get", "pods")
    assert 'cannot create resource "pods"' in _refused(
        kubectl, "--token", jane, "run", "x", "-n", "team", "--image=busybox")
    assert kubectl("--token", jane, "auth", "can-i", "watch", "pods", "-n", "team"
                   ).strip() == "yes"
    assert kubectl.run("--token", jane, "auth", "can-i", "list", "pods").stdout.strip() == "no"
    rows = [line.split() for line in
            kubectl("--token", jane, "auth", "can-i", "--list", "-n", "team").splitlines()]
    assert ["pods", "[]", "[]", "[get", "list", "watch]"] in rows
    assert ["secrets", "[]", "[s1]", "[get]"] in rows
    assert not any(row[0] == "*.*" for row in rows)  # nothing beyond the bindings
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    # system:basic-user as Kubernetes has it: each review in its own group only.
    reviews = sorted(row[0] for row in rows if row[0].startswith("self"))
    assert reviews == ["selfsubjectaccessreviews.authorization.k8s.io",
                       "selfsubjectreviews.authentication.k8s.io",
                       "selfsubjectrulesreviews.authorization.k8s.io"]


def test_the_view_role_is_aggregated(kubectl: Kubectl, user_token: Callable[[str], str]) -> None:
    viewer = user_token("viewer")
    kubectl("create", "namespace", "looked-at")
    kubectl("create", "rolebinding", "viewer", "-n", "looked-at", "--clusterrole=view",
            "--user=viewer")
    can = ["--token", viewer, "auth", "can-i", "-n", "looked-at"]
    wait_for(lambda: kubectl.run(*can, "list", "deployments").stdout.strip() == "yes",
             what="view reads deployments (aggregated from system:aggregate-to-view)")
    assert kubectl.run(*can, "get", "secrets").stdout.strip() == "no"
    assert kubectl.run(*can, "get", "pods", "--subresource=log").stdout.strip() == "yes"
    assert kubectl.run(*can, "delete", "pods").stdout.strip() == "no"
    # EndpointSlices are read, never written, as Kubernetes' view has it.
    assert kubectl.run(*can, "watch", "endpointslices").stdout.strip() == "yes"
    assert kubectl.run(*can, "create", "endpointslices").stdout.strip() == "no"
    # A ClusterRole labelled to join view widens it.
    kubectl("apply", "-f", "-", input="""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: view-secrets
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get], resourceNames: [public]}
""")
    wait_for(lambda: kubectl.run(*can, "get", "secrets/public").stdout.strip() == "yes",
             what="the aggregated rule")
    assert kubectl.run(*can, "get", "secrets/private").stdout.strip() == "no"


def test_impersonation_needs_the_impersonate_verb(
        kubectl: Kubectl, user_token: Callable[[str], str]) -> None:
    bob = user_token("bob")
    kubectl("create", "namespace", "bobs")
    kubectl("create", "rolebinding", "janes", "-n", "bobs", "--clusterrole=view",
            "--user=jane")
    refused = _refused(kubectl, "--token", bob, "--as=jane", "get", "pods", "-n", "bobs")
    assert ('users "jane" is forbidden: User "bob" cannot impersonate resource "users" in '
            'API group "" at the cluster scope') in refused
    kubectl("create", "clusterrole", "impersonate-jane", "--verb=impersonate",
            "--resource=users", "--resource-name=jane")
    kubectl("create", "clusterrolebinding", "bob-as-jane", "--clusterrole=impersonate-jane",
            "--user=bob")
    wait_for(lambda: kubectl.run("--token", bob, "--as=jane", "get", "pods", "-n", "bobs"
                                 ).returncode == 0, what="bob acts as jane")
    whoami = kubectl("--token", bob, "--as=jane", "auth", "whoami")
    assert "jane" in whoami and "bob" not in whoami
    # As jane, bob has jane's rights only, and may not become anyone else.
    assert 'User "jane" cannot list resource "pods"' in _refused(
        kubectl, "--token", bob, "--as=jane", "get", "pods", "-n", "default")
    assert 'users "root" is forbidden' in _refused(kubectl, "--token", bob, "--as=root",
                                                   "get", "pods")
    assert 'groups "system:masters" is forbidden' in _refused(
        kubectl, "--token", bob, "--as=jane", "--as-group=system:masters", "get", "pods")


def test_python_client_sees_403_and_invalid_bindings(
        master: Master, user_token: Callable[[str], str]) -> None:
    admin = config.new_client_from_config(config_file=str(master.kubeconfig))
    rbac = client.RbacAuthorizationV1Api(admin)
    with pytest.raises(ApiException) as err:
        rbac.create_namespaced_role_binding("default", client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="bad"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Team",
                                      name="x"),
            subjects=[client.RbacV1Subject(kind="Robot", name="r")]))
    assert err.value.status == 422
    assert "roleRef.kind" in str(err.value.body) and "subjects[0].kind" in str(err.value.body)
    names = {r.metadata.name for r in rbac.list_cluster_role().items}
    assert {"cluster-admin", "admin", "edit", "view", "system:kube-scheduler"} <= names
    cfg = client.Configuration(host=master.url, api_key={
        "authorization": f"Bearer {user_token('carol')}"})
    cfg.ssl_ca_cert = str(master.ca_path)
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(client.ApiClient(cfg)).list_namespaced_secret("kube-system")
    assert err.value.status == 403
    assert json.loads(err.value.body)["message"] == (
        'secrets is forbidden: User "carol" cannot list resource "secrets" in API group "" '
        'in the namespace "kube-system"')
