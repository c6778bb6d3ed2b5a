"""RBAC escalation checks with the real kubectl: a user who may write Roles and
RoleBindings still cannot grant what they do not hold — unless they may
`escalate` (Roles) or `bind` (that role) — refused with Kubernetes' words."""

from __future__ import annotations

import secrets

import pytest

from tests.cluster import Master, wait_for
from tests.kubectl import Kubectl

NS = "esc"


@pytest.fixture(scope="module")
def jane(master: Master, kubectl: Kubectl) -> str:
    token = secrets.token_urlsafe(16)
    with open(master.data_dir / "token", "a") as tokens:
        tokens.write(f"{token},esc-jane,u-jane,\n")
    kubectl("create", "namespace", NS)
    kubectl("create", "role", "rbac-writer", "-n", NS, "--verb=create,update,get,list",
            "--resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io")
    kubectl("create", "role", "pod-reader", "-n", NS, "--verb=get,list", "--resource=pods")
    for role in ("rbac-writer", "pod-reader"):
        kubectl("create", "rolebinding", f"jane-{role}", "-n", NS, f"--role={role}",
                "--user=esc-jane")
    wait_for(lambda: kubectl.run("--token", token, "get", "roles", "-n", NS).returncode == 0,
             what="jane's bindings")
    return token


def _as_jane(kubectl: Kubectl, jane: str, *args: str) -> tuple[int, str]:
    proc = kubectl.run("--token", jane, *args, "-n", NS)
    return proc.returncode, proc.stderr


def test_a_role_with_more_than_the_caller_holds_needs_escalate(kubectl: Kubectl,
                                                               jane: str) -> None:
    code, err = _as_jane(kubectl, jane, "create", "role", "own", "--verb=get",
                         "--resource=pods")
    assert code == 0, err
    code, err = _as_jane(kubectl, jane, "create", "role", "more", "--verb=get,list,delete",
                         "--resource=secrets,pods")
    assert code != 0
    assert ('roles.rbac.authorization.k8s.io "more" is forbidden: user "esc-jane" '
            '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
            'currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n'
            '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "delete"]}') in err
    kubectl("create", "role", "escalator", "-n", NS, "--verb=escalate",
            "--resource=roles.rbac.authorization.k8s.io")
    kubectl("create", "rolebinding", "jane-escalates", "-n", NS, "--role=escalator",
            "--user=esc-jane")
    wait_for(lambda: _as_jane(kubectl, jane, "create", "role", "more", "--verb=get,list,delete",
                              "--resource=secrets,pods")[0] == 0,
             what="escalate lets jane write the role")


def test_a_binding_to_a_role_the_caller_lacks_needs_bind(kubectl: Kubectl, jane: str) -> None:
    code, err = _as_jane(kubectl, jane, "create", "rolebinding", "pods-for-bob",
                         "--role=pod-reader", "--user=bob")
    assert code == 0, err  # she holds every rule of pod-reader
    code, err = _as_jane(kubectl, jane, "create", "rolebinding", "bob-views",
                         "--clusterrole=view", "--user=bob")
    assert code != 0
    assert ('rolebindings.rbac.authorization.k8s.io "bob-views" is forbidden: user "esc-jane" '
            '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
            'currently held:') in err
    assert '{APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list" "watch"]}' in err
    code, err = _as_jane(kubectl, jane, "create", "rolebinding", "ghost", "--role=nope",
                         "--user=bob")
    assert 'roles.rbac.authorization.k8s.io "nope" not found' in err
    kubectl("create", "clusterrole", "bind-view", "--verb=bind",
            "--resource=clusterroles.rbac.authorization.k8s.io", "--resource-name=view")
    kubectl("create", "rolebinding", "jane-binds-view", "-n", NS, "--clusterrole=bind-view",
            "--user=esc-jane")
    wait_for(lambda: _as_jane(kubectl, jane, "create", "rolebinding", "bob-views",
                              "--clusterrole=view", "--user=bob")[0] == 0,
             what="bind on view lets jane bind it")
    code, err = _as_jane(kubectl, jane, "create", "rolebinding", "bob-edits",
                         "--clusterrole=edit", "--user=bob")
    assert "is attempting to grant RBAC permissions not currently held" in err  # only view


def test_an_aggregation_rule_needs_escalate(kubectl: Kubectl, master: Master) -> None:
    token = secrets.token_urlsafe(16)
    with open(master.data_dir / "token", "a") as tokens:
        tokens.write(f"{token},role-author,u-ra,\n")
    kubectl("create", "clusterrole", "clusterrole-writer", "--verb=create",
            "--resource=clusterroles.rbac.authorization.k8s.io")
    kubectl("create", "clusterrolebinding", "role-author", "--clusterrole=clusterrole-writer",
            "--user=role-author")
    wait_for(lambda: kubectl.run("--token", token, "auth", "can-i", "create",
                                 "clusterroles").stdout.strip() == "yes", what="the binding")
    proc = kubectl.run("--token", token, "create", "clusterrole", "everything",
                       "--aggregation-rule=rbac.example.com/aggregate=true")
    assert ('clusterroles.rbac.authorization.k8s.io "everything" is forbidden: must have '
            'cluster-admin privileges to use the aggregationRule') in proc.stderr
    proc = kubectl.run("--token", token, "create", "clusterrole", "empty", "--verb=get",
                       "--resource=nodes")
    assert "is attempting to grant RBAC permissions not currently held" in proc.stderr
    assert '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}' in proc.stderr
