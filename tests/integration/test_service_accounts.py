"""ServiceAccounts with the real kubectl and the real `kubernetes` client: every
namespace gets `default`; `kubectl create token` issues a JWT the server
authenticates as system:serviceaccount:<ns>:<name>, allowed only what its Role
says; a token bound to a pod dies with the pod; TokenReview and
SubjectAccessReview answer for other components; bad requests get Kubernetes'
words."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import httpx
import jwt
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.cluster import Master, wait_for
from tests.kubectl import Kubectl


@pytest.fixture(scope="module")
def admin(master: Master) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(master.kubeconfig))


def _as(master: Master, token: str) -> client.ApiClient:
    cfg = client.Configuration(host=master.url, api_key={"authorization": f"Bearer {token}"})
    cfg.ssl_ca_cert = str(master.ca_path)
    return client.ApiClient(cfg)


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _namespace_with_default_sa(kubectl: Kubectl, name: str) -> None:
    kubectl("create", "namespace", name)
    wait_for(lambda: kubectl.run("get", "serviceaccount", "default", "-n", name).returncode == 0,
             what=f"the default ServiceAccount of {name}")


def test_create_token_is_a_service_account_within_its_role(kubectl: Kubectl) -> None:
    _namespace_with_default_sa(kubectl, "sa-team")
    rows = [line.split() for line in kubectl("get", "sa", "-n", "sa-team").splitlines()]
    assert rows[0] == ["NAME", "SECRETS", "AGE"] and rows[1][:2] == ["default", "0"]
    kubectl("create", "serviceaccount", "robot", "-n", "sa-team")  # a protobuf body
    token = kubectl("create", "token", "robot", "-n", "sa-team", "--duration", "20m").strip()
    claims = _claims(token)
    assert claims["sub"] == "system:serviceaccount:sa-team:robot"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert int(str(claims["exp"])) - int(str(claims["iat"])) == 1200
    whoami = json.loads(kubectl("--token", token, "auth", "whoami", "-o", "json"))
    info = whoami["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:sa-team:robot"
    assert set(info["groups"]) == {"system:serviceaccounts", "system:serviceaccounts:sa-team",
                                   "system:authenticated"}
    refused = kubectl.run("--token", token, "get", "pods", "-n", "sa-team")
    assert ('pods is forbidden: User "system:serviceaccount:sa-team:robot" cannot list '
            'resource "pods" in API group "" in the namespace "sa-team"') in refused.stderr
    kubectl("create", "role", "pods", "-n", "sa-team", "--verb=list", "--resource=pods")
    kubectl("create", "rolebinding", "robot-pods", "-n", "sa-team", "--role=pods",
            "--serviceaccount=sa-team:robot")
    wait_for(lambda: kubectl.run("--token", token, "get", "pods", "-n", "sa-team"
                                 ).returncode == 0, what="the robot lists pods")
    assert kubectl.run("--token", token, "get", "pods", "-n", "default").returncode != 0
    # A token names the ServiceAccount's uid: deleting the account ends it.
    kubectl("delete", "serviceaccount", "robot", "-n", "sa-team")
    wait_for(lambda: "Unauthorized" in kubectl.run("--token", token, "get", "pods", "-n",
                                                    "sa-team").stderr,
             what="the deleted account's token refused")


def test_a_token_bound_to_a_pod_ends_with_the_pod(kubectl: Kubectl, admin: client.ApiClient,
                                                  master: Master) -> None:
    _namespace_with_default_sa(kubectl, "sa-bound")
    core = client.CoreV1Api(admin)
    pod = core.create_namespaced_pod("sa-bound", client.V1Pod(
        metadata=client.V1ObjectMeta(name="holder"), spec=client.V1PodSpec(
            node_name="nowhere", containers=[client.V1Container(name="c", image="x")])))
    token = kubectl("create", "token", "default", "-n", "sa-bound", "--bound-object-kind",
                    "Pod", "--bound-object-name", "holder", "--bound-object-uid",
                    pod.metadata.uid).strip()
    assert _claims(token)["kubernetes.io"]["pod"] == {  # type: ignore[index]
        "name": "holder", "uid": pod.metadata.uid}
    me = json.loads(kubectl("--token", token, "auth", "whoami", "-o", "json"))
    extra = me["status"]["userInfo"]["extra"]
    assert extra["authentication.kubernetes.io/pod-name"] == ["holder"]
    assert extra["authentication.kubernetes.io/pod-uid"] == [pod.metadata.uid]
    wrong = kubectl.run("create", "token", "default", "-n", "sa-bound", "--bound-object-kind",
                        "Pod", "--bound-object-name", "holder", "--bound-object-uid", "nope")
    assert "does not match the UID in record" in wrong.stderr
    core.delete_namespaced_pod("holder", "sa-bound", grace_period_seconds=0)
    wait_for(lambda: kubectl.run("--token", token, "auth", "whoami").returncode != 0,
             what="the pod's token refused once the pod is gone")
    assert "Unauthorized" in kubectl.run("--token", token, "auth", "whoami").stderr


def test_token_request_bad_input(kubectl: Kubectl) -> None:
    short = kubectl.run("create", "token", "default", "-n", "default", "--duration", "5m")
    assert ("spec.expirationSeconds: Invalid value: 300: may not specify a duration less "
            "than 10 minutes") in short.stderr
    missing = kubectl.run("create", "token", "ghost", "-n", "default")
    assert 'serviceaccounts "ghost" not found' in missing.stderr
    kind = kubectl.run("create", "token", "default", "-n", "default",
                       "--bound-object-kind", "Deployment", "--bound-object-name", "x")
    assert kind.returncode != 0


def test_token_review_and_subject_access_review(kubectl: Kubectl, admin: client.ApiClient,
                                                master: Master) -> None:
    _namespace_with_default_sa(kubectl, "sa-review")
    token = kubectl("create", "token", "default", "-n", "sa-review").strip()
    authn = client.AuthenticationV1Api(admin)
    review = authn.create_token_review(client.V1TokenReview(
        spec=client.V1TokenReviewSpec(token=token)))
    assert review.status.authenticated is True
    assert review.status.user.username == "system:serviceaccount:sa-review:default"
    assert "system:serviceaccounts:sa-review" in review.status.user.groups
    other = authn.create_token_review(client.V1TokenReview(
        spec=client.V1TokenReviewSpec(token=token, audiences=["vault"])))
    assert other.status.authenticated is False  # issued for the API, not for vault
    forged = authn.create_token_review(client.V1TokenReview(
        spec=client.V1TokenReviewSpec(token=token[:-4] + "AAAA")))
    assert forged.status.authenticated is False
    static = authn.create_token_review(client.V1TokenReview(
        spec=client.V1TokenReviewSpec(token=master.token)))
    assert static.status.user.username == "admin"

    authz = client.AuthorizationV1Api(admin)

    def may(verb: str, ns: str) -> bool:
        sar = authz.create_subject_access_review(client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user="system:serviceaccount:sa-review:default",
                groups=["system:serviceaccounts"],
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, resource="configmaps", namespace=ns))))
        return bool(sar.status.allowed)

    assert not may("get", "sa-review")
    kubectl("create", "rolebinding", "sa-view", "-n", "sa-review", "--clusterrole=view",
            "--serviceaccount=sa-review:default")
    wait_for(lambda: may("get", "sa-review"), what="the SubjectAccessReview allows")
    assert not may("delete", "sa-review") and not may("get", "default")
    local = authz.create_namespaced_local_subject_access_review(
        "sa-review", client.V1LocalSubjectAccessReview(
            metadata=client.V1ObjectMeta(namespace="sa-review"),
            spec=client.V1SubjectAccessReviewSpec(
                user="system:serviceaccount:sa-review:default",
                resource_attributes=client.V1ResourceAttributes(verb="list", resource="pods"))))
    assert local.status.allowed is True
    # Reviews of others are for components: a plain service account may not ask.
    sa = client.AuthenticationV1Api(_as(master, token))
    with pytest.raises(ApiException) as err:
        sa.create_token_review(client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=secrets.token_urlsafe(8))))
    assert err.value.status == 403
    assert 'cannot create resource "tokenreviews" in API group "authentication.k8s.io"' in (
        json.loads(err.value.body)["message"])


def test_a_pod_needs_its_service_account(kubectl: Kubectl, admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    # A pod right after its namespace: admission waits for the controller's `default`.
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="sa-needed")))
    first = core.create_namespaced_pod("sa-needed", client.V1Pod(
        metadata=client.V1ObjectMeta(name="first"), spec=client.V1PodSpec(
            node_name="nowhere", containers=[client.V1Container(name="c", image="x")])))
    assert first.spec.service_account_name == "default"
    manifest = json.dumps({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": "lost", "namespace": "sa-needed"},
                           "spec": {"serviceAccountName": "ghost", "nodeName": "nowhere",
                                    "containers": [{"name": "c", "image": "x"}]}})
    refused = kubectl.run("create", "-f", "-", input=manifest)
    assert ('Error from server (Forbidden): error when creating "STDIN": pods "lost" is '
            'forbidden: error looking up service account sa-needed/ghost: serviceaccount '
            '"ghost" not found') in refused.stderr
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("sa-needed", json.loads(manifest))
    assert err.value.status == 403 and json.loads(err.value.body)["reason"] == "Forbidden"

    # A ReplicaSet's pods: FailedCreate, retried with back-off, until the account exists.
    client.AppsV1Api(admin).create_namespaced_replica_set("sa-needed", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "ghosts"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "ghosts"}},
                 "template": {"metadata": {"labels": {"app": "ghosts"}},
                              "spec": {"serviceAccountName": "ghost",
                                       "containers": [{"name": "c", "image": "x"}]}}}})

    def failed_creates() -> list[client.CoreV1Event]:
        return [e for e in core.list_namespaced_event(
            "sa-needed", field_selector="involvedObject.name=ghosts").items
            if e.reason == "FailedCreate"]

    # One message for every retry (the pod's generateName, not each generated name),
    # so one aggregated Event. Six tries of a 50 ms back-off doubling span >1.5 s,
    # and the seventh comes 1.6 s later, the eighth 3.2 s after that: a hot loop
    # would be far past eight tries by the time six are seen.
    event = wait_for(lambda: [e for e in failed_creates() if (e.count or 0) >= 6],
                     what="six FailedCreate tries")[0]
    assert len(failed_creates()) == 1 and event.type == "Warning" and event.count <= 8
    assert event.message == ('Error creating: pods "ghosts-" is forbidden: error looking up '
                             'service account sa-needed/ghost: serviceaccount "ghost" not found')
    assert (event.last_timestamp - event.first_timestamp).total_seconds() >= 1
    core.create_namespaced_service_account("sa-needed", client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="ghost")))
    wait_for(lambda: core.list_namespaced_pod("sa-needed", label_selector="app=ghosts").items,
             what="the ReplicaSet's pod once its account exists")


def test_issuer_discovery_checks_a_token_without_the_api(kubectl: Kubectl,
                                                         master: Master) -> None:
    """A ServiceAccount reads the OpenID discovery document and the JWK set (the
    real client's WellKnownApi and OpenidApi), and the token's signature checks
    against that key alone; no token, no documents."""
    _namespace_with_default_sa(kubectl, "sa-oidc")
    token = kubectl("create", "token", "default", "-n", "sa-oidc").strip()
    api = _as(master, token)
    # the client's str return type would repr() the parsed JSON: the raw body instead
    document = json.loads(client.WellKnownApi(api).get_service_account_issuer_open_id_configuration(
        _preload_content=False).data)
    assert document["issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert document["jwks_uri"] == f"{master.url}/openid/v1/jwks"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = jwt.PyJWKSet.from_json(client.OpenidApi(api).get_service_account_issuer_open_id_keyset(
        _preload_content=False).data.decode())
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, keys[kid].key, algorithms=["RS256"], audience=document["issuer"],
                        issuer=document["issuer"])
    assert claims["sub"] == "system:serviceaccount:sa-oidc:default"
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, keys[kid].key, algorithms=["RS256"], audience=document["issuer"])
    raw = kubectl("get", "--raw", "/openid/v1/jwks")
    assert json.loads(raw)["keys"][0]["kid"] == kid
    with httpx.Client(verify=str(master.ca_path)) as anonymous:
        assert anonymous.get(f"{master.url}/.well-known/openid-configuration").status_code == 401


def test_every_namespace_gets_the_root_ca_and_keeps_it(master: Master, kubectl: Kubectl) -> None:
    """kube-root-ca.crt, as kube-controller-manager's root-ca-cert-publisher makes it:
    the cluster CA in each namespace, put back when changed or deleted."""
    kubectl("create", "namespace", "ca-team")
    ca = master.ca_path.read_text()

    def published(unlike: str = "") -> Any:
        """The ConfigMap when it holds the CA (and is not at resourceVersion ``unlike``)."""
        got = kubectl.run("get", "configmap", "kube-root-ca.crt", "-n", "ca-team", "-o", "json")
        cm = json.loads(got.stdout) if got.returncode == 0 else None
        return cm if cm and cm.get("data") == {"ca.crt": ca} and \
            cm["metadata"]["resourceVersion"] != unlike else None

    cm = wait_for(published, what="kube-root-ca.crt in a new namespace")
    assert cm["metadata"]["annotations"]["kubernetes.io/description"].startswith(
        "Contains a CA bundle that can be used to verify the kube-apiserver")
    changed = json.loads(kubectl(
        "patch", "configmap", "kube-root-ca.crt", "-n", "ca-team", "--type", "merge",
        "-p", '{"data": {"ca.crt": "not a CA", "extra": "x"}}', "-o", "json"))
    wait_for(lambda: published(changed["metadata"]["resourceVersion"]),
             what="the CA put back after a change")
    kubectl("delete", "configmap", "kube-root-ca.crt", "-n", "ca-team")
    wait_for(published, what="the CA put back after a delete")
    assert kubectl("get", "configmap", "kube-root-ca.crt", "-n", "default", "-o",
                   "jsonpath={.data.ca\\.crt}").strip() == ca.strip()
