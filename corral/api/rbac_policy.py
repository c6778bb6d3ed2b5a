"""The ClusterRoles and ClusterRoleBindings every corral cluster starts with
(Kubernetes' bootstrap policy, plugin/pkg/auth/authorizer/rbac/bootstrappolicy,
cut to the kinds corral serves).

    cluster-admin                 everything          ← group system:masters
    admin / edit / view           aggregated from the system:aggregate-to-* roles
                                  (and any ClusterRole labelled to join them)
    system:basic-user             the self reviews (auth can-i, whoami)   ← every
    system:discovery              /api, /apis, /openapi, /version          authenticated
    system:public-info-viewer     /healthz /livez /readyz /version         user; the last
    corral:dashboard              /ui (it authenticates its own users)     also anonymous
    system:service-account-issuer-discovery  /.well-known/openid-configuration,
                                  /openid/v1/jwks   ← group system:serviceaccounts
    system:node                   ← group system:nodes (narrowed by NodeRestriction)
    system:kube-scheduler         ← user system:kube-scheduler
    system:kube-controller-manager← user system:kube-controller-manager
    system:auth-delegator         tokenreviews, subjectaccessreviews (bind it to a component)
    system:corral-mesos-master    ← user system:corral-mesos-master (corral/offers/)
    corral:mesos-framework        register frameworks in any role ← user corral-framework
                                  (the principal `corral master --mesos-listen` makes)
    Role kube-system/system:corral-scheduler-ledger  configmaps there ← system:kube-scheduler,
                                  system:corral-mesos-master (accepted offers reserve there)
    system:node-bootstrapper, ...:nodeclient ← group system:bootstrappers (TLS bootstrap:
                                  ask for a node client certificate, auto-approved)
    ...:selfnodeclient            ← group system:nodes (renew its own)
    system:kubelet-api-admin      ← user kube-apiserver-kubelet-client (the master's
                                  credential toward the agents)

Each is written on every start unless its annotation
rbac.authorization.kubernetes.io/autoupdate is "false", as kube-apiserver
reconciles them, so a newer corral's defaults reach an older cluster.
"""

from __future__ import annotations

from corral.api.token_store import BOOTSTRAPPERS
from corral.objects import Obj

RBAC_API = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL_GROUPS_VERBS = ["*"]
CERTIFICATES = "certificates.k8s.io"


def _rule(verbs: list[str], groups: list[str], resources: list[str],
          names: list[str] | None = None) -> Obj:
    rule: Obj = {"verbs": verbs, "apiGroups": groups, "resources": resources}
    if names:
        rule["resourceNames"] = names
    return rule


def _urls(verbs: list[str], urls: list[str]) -> Obj:
    return {"verbs": verbs, "nonResourceURLs": urls}


# What a namespace's users work with, by group (view reads these, edit writes them).
_WORKLOADS: list[tuple[str, list[str]]] = [
    ("", ["pods", "services", "endpoints", "configmaps", "replicationcontrollers",
          "replicationcontrollers/scale", "serviceaccounts"]),
    ("apps", ["deployments", "deployments/scale", "replicasets", "replicasets/scale",
              "daemonsets", "statefulsets", "statefulsets/scale"]),
    ("batch", ["jobs", "cronjobs"]),
    ("autoscaling", ["horizontalpodautoscalers"]),
    ("policy", ["poddisruptionbudgets"]),
    ("coordination.k8s.io", ["leases"]),
    ("corral.dev", ["allocs"]),
]
_VIEW_ONLY: list[tuple[str, list[str]]] = [
    ("", ["pods/log", "pods/status", "services/status", "events", "limitranges", "resourcequotas",
          "resourcequotas/status", "namespaces", "namespaces/status",
          "replicationcontrollers/status"]),
    ("apps", ["deployments/status", "replicasets/status", "daemonsets/status",
              "statefulsets/status"]),
    ("batch", ["jobs/status"]),
    ("corral.dev", ["allocs/status", "allocs/log"]),
    ("metrics.k8s.io", ["pods"]),
    # Kubernetes' view reads EndpointSlices; edit and admin write neither them nor
    # (since 1.22, CVE-2021-25740) Endpoints: they come from the controllers.
    ("discovery.k8s.io", ["endpointslices"]),
]


def _aggregate_to_view() -> list[Obj]:
    return [_rule(READ, [g], r) for g, r in _WORKLOADS + _VIEW_ONLY]


def _aggregate_to_edit() -> list[Obj]:
    return [
        *[_rule(WRITE, [g], r) for g, r in _WORKLOADS],
        _rule(READ + WRITE, [""], ["secrets"]),
        _rule(["create", "get"], [""], ["pods/exec", "pods/attach", "pods/portforward",
                                         "pods/proxy", "services/proxy"]),
        _rule(["create"], ["policy"], ["pods/eviction"]),
        _rule(["impersonate"], [""], ["serviceaccounts"]),
        _rule(["create"], [""], ["serviceaccounts/token"]),
    ]


def _aggregate_to_admin() -> list[Obj]:
    return [
        _rule(READ + WRITE, [RBAC_GROUP], ["roles", "rolebindings"]),
        _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    ]


def _aggregated(name: str, to: str) -> Obj:
    return _cluster_role(name, [], aggregation=[{"matchLabels": {f"{AGGREGATE}{to}": "true"}}])


def _cluster_role(name: str, rules: list[Obj], labels: dict[str, str] | None = None,
                  aggregation: list[Obj] | None = None) -> Obj:
    role: Obj = {
        "apiVersion": RBAC_API, "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults",
                                              **(labels or {})},
                     "annotations": {AUTOUPDATE: "true"}},
        "rules": rules,
    }
    if aggregation is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": aggregation}
    return role


def _in_kube_system(obj: Obj, kind: str) -> Obj:
    return {**obj, "kind": kind, "metadata": {**obj["metadata"], "namespace": "kube-system"}}


def _binding(name: str, role: str, subjects: list[tuple[str, str]]) -> Obj:
    return {
        "apiVersion": RBAC_API, "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                     "annotations": {AUTOUPDATE: "true"}},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": kind, "apiGroup": RBAC_GROUP, "name": who}
                     for kind, who in subjects],
    }


_PUBLIC_URLS = ["/healthz", "/healthz/*", "/livez", "/livez/*", "/readyz", "/readyz/*",
                "/version", "/version/"]


def _scheduler() -> list[Obj]:
    return [
        _rule(READ, ["", "corral.dev"], ["pods", "nodes", "namespaces", "allocs",
                                        "resourcequotas", "services", "persistentvolumeclaims"]),
        _rule(READ, ["scheduling.k8s.io"], ["priorityclasses"]),
        _rule(READ, ["apps", "policy"], ["replicasets", "poddisruptionbudgets"]),
        _rule(["create"], ["", "corral.dev"], ["pods/binding", "allocs/binding", "events"]),
        _rule(["delete", "patch", "update"], ["", "corral.dev"],
              ["pods", "pods/status", "allocs", "allocs/status"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(READ + ["create", "update", "patch"], ["coordination.k8s.io"], ["leases"]),
    ]


def _controller_manager() -> list[Obj]:
    """What corral's controllers use under their one identity. The garbage
    collector and the namespace controller read, update (ownerReferences,
    finalizers) and delete objects of every kind, custom ones too, as
    Kubernetes' generic-garbage-collector and namespace-controller roles allow;
    what they create is named kind by kind. Never: impersonation, tokens, node
    proxies, exec, reviews of others, creating Secrets or RBAC objects."""
    return [
        _rule(READ + ["update", "patch", "delete", "deletecollection"], ["*"], ["*"]),
        _rule(["create"], ["", "corral.dev"], ["pods", "endpoints", "serviceaccounts",
                                               "configmaps", "allocs"]),
        _rule(["create"], ["apps"], ["replicasets", "controllerrevisions"]),
        _rule(["create"], ["batch"], ["jobs"]),
        _rule(["create"], ["discovery.k8s.io"], ["endpointslices"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(["create"], ["coordination.k8s.io"], ["leases"]),
    ]


MESOS_MASTER = "system:corral-mesos-master"
MESOS_MASTER_LEASE = "corral-mesos-master"  # in kube-system: who leads the Mesos master


def _mesos_master() -> list[Obj]:
    """The Mesos master (corral/offers/): Frameworks and their Allocs, what the
    offers are made of, its leader Lease, and the reviews that authenticate and
    authorize frameworks. Never the admin's credential."""
    return [
        _rule(READ + ["create", "update", "patch", "delete"], ["corral.dev"],
              ["frameworks", "frameworks/status", "allocs", "allocs/status"]),
        _rule(READ, ["", "scheduling.k8s.io"], ["nodes", "pods", "namespaces",
                                                "resourcequotas", "priorityclasses"]),
        _rule(["create"], [""], ["namespaces"]),
        _rule(READ + ["create", "update", "patch"], ["coordination.k8s.io"], ["leases"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        # It writes the users frameworks' tasks run as, once their principal may
        # (corral/api/alloc_users.py holds every other writer to the same rule).
        _rule(["run"], ["corral.dev"], ["taskusers"]),
        # It launches frameworks' tasks on agents directly (corral/offers/agentlink.py),
        # as kube-apiserver-kubelet-client may call kubelets.
        _rule(["create", "get"], [""], ["nodes/proxy"]),
    ]


def _node() -> list[Obj]:
    """What an agent uses; NodeRestriction (node_restriction.py) narrows it to its own."""
    return [
        _rule(READ + ["create", "update", "patch", "delete"], [""], ["nodes"]),
        _rule(["patch", "update"], [""], ["nodes/status", "pods/status"]),
        _rule(READ + ["delete"], ["", "corral.dev"], ["pods", "allocs"]),
        _rule(["patch", "update"], ["corral.dev"], ["allocs/status"]),
        _rule(["get"], [""], ["secrets", "configmaps", "serviceaccounts"]),
        _rule(["create"], [""], ["serviceaccounts/token"]),  # its pods' tokens only
        _rule(READ, [""], ["services", "endpoints", "namespaces"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(["get", "create", "update", "patch", "delete"], ["coordination.k8s.io"],
              ["leases"]),
        # Which Mesos master's term it takes launches from (corral/agent/master_terms.py).
        _rule(["list", "watch"], ["coordination.k8s.io"], ["leases"], [MESOS_MASTER_LEASE]),
        _rule(["create"], ["authorization.k8s.io", "authentication.k8s.io"],
              ["subjectaccessreviews", "tokenreviews"]),
        # Its own client (renewal) and serving certificates; what it may ask for is
        # the signers' rules (corral/api/certificates/requests.py).
        _rule(["create", "get", "list", "watch"], [CERTIFICATES],
              ["certificatesigningrequests"]),
    ]


def _bootstrap_roles() -> list[Obj]:
    """Kubernetes' roles for TLS bootstrapping: a bootstrap token may ask for a
    node client certificate (auto-approved for it), a node may renew its own."""
    csr = [CERTIFICATES]
    return [
        _cluster_role("system:node-bootstrapper", [
            _rule(["create", "get", "list", "watch"], csr, ["certificatesigningrequests"])]),
        _cluster_role("system:certificates.k8s.io:certificatesigningrequests:nodeclient", [
            _rule(["create"], csr, ["certificatesigningrequests/nodeclient"])]),
        _cluster_role("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [
            _rule(["create"], csr, ["certificatesigningrequests/selfnodeclient"])]),
        # The master's credential toward the agents (corral/api/certificates/signer.py).
        _cluster_role("system:kubelet-api-admin", [
            _rule(["*"], [""], ["nodes/proxy", "nodes/log", "nodes/stats", "nodes/metrics"]),
            _rule(READ, [""], ["nodes"])]),
    ]


def _bootstrap_bindings() -> list[Obj]:
    prefix = "system:certificates.k8s.io:certificatesigningrequests:"
    return [
        _binding("corral:kubelet-bootstrap", "system:node-bootstrapper",
                 [("Group", BOOTSTRAPPERS)]),
        _binding("corral:node-autoapprove-bootstrap", f"{prefix}nodeclient",
                 [("Group", BOOTSTRAPPERS)]),
        _binding("corral:node-autoapprove-certificate-rotation", f"{prefix}selfnodeclient",
                 [("Group", "system:nodes")]),
        _binding("system:kube-apiserver-kubelet-client", "system:kubelet-api-admin",
                 [("User", "kube-apiserver-kubelet-client")]),
    ]


def cluster_roles() -> list[Obj]:
    return [
        _cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])]),
        _aggregated("admin", "admin"),
        _aggregated("edit", "edit"),
        _aggregated("view", "view"),
        _cluster_role("system:aggregate-to-admin", _aggregate_to_admin(),
                      {f"{AGGREGATE}admin": "true"}),
        _cluster_role("system:aggregate-to-edit", _aggregate_to_edit(),
                      {f"{AGGREGATE}admin": "true", f"{AGGREGATE}edit": "true"}),
        _cluster_role("system:aggregate-to-view", _aggregate_to_view(),
                      {f"{AGGREGATE}admin": "true", f"{AGGREGATE}edit": "true",
                       f"{AGGREGATE}view": "true"}),
        _cluster_role("system:basic-user", [  # Kubernetes' two rules, not their product
            _rule(["create"], ["authorization.k8s.io"],
                  ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])]),
        _cluster_role("system:discovery", [_urls(
            ["get"], ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*",
                      "/version", "/version/", "/healthz", "/livez", "/readyz"])]),
        _cluster_role("system:public-info-viewer", [_urls(["get"], _PUBLIC_URLS)]),
        _cluster_role(ISSUER_DISCOVERY, [_urls(["get"], [
            "/.well-known/openid-configuration", "/.well-known/openid-configuration/",
            "/openid/v1/jwks", "/openid/v1/jwks/"])]),
        _cluster_role("system:auth-delegator", [
            _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])]),
        _cluster_role("corral:dashboard", [_urls(["*"], ["/ui", "/ui/*"])]),
        _cluster_role("system:kube-scheduler", _scheduler()),
        _cluster_role("system:node", _node()),
        _cluster_role("system:kube-controller-manager", _controller_manager()),
        _cluster_role(MESOS_MASTER, _mesos_master()),
        # Mesos' register_frameworks ACL as RBAC (corral/offers/auth.py); run_tasks
        # (verb "run" on taskusers) is granted to no one by default.
        _cluster_role("corral:mesos-framework", [
            _rule(["register"], ["corral.dev"], ["frameworkroles"])]),
        *_bootstrap_roles(),
    ]


# ServiceAccount issuer discovery (handlers/oidc.py): every ServiceAccount may read it.
ISSUER_DISCOVERY = "system:service-account-issuer-discovery"

# The scheduler's node ledgers (corral/scheduler/ledger.py) are ConfigMaps in
# kube-system: a Role there, as Kubernetes gives kube-scheduler its
# leader-locking Role, rather than ConfigMaps in every namespace.
SCHEDULER_LEDGER = "system:corral-scheduler-ledger"


def roles() -> list[Obj]:
    return [_in_kube_system(_cluster_role(SCHEDULER_LEDGER, [
        _rule(READ + ["create", "update", "patch", "delete"], [""], ["configmaps"])]), "Role")]


def role_bindings() -> list[Obj]:
    binding = _binding(SCHEDULER_LEDGER, SCHEDULER_LEDGER, [("User", "system:kube-scheduler"),
                                                             ("User", MESOS_MASTER)])
    binding["roleRef"]["kind"] = "Role"
    return [_in_kube_system(binding, "RoleBinding")]


def cluster_role_bindings() -> list[Obj]:
    everyone = [("Group", "system:authenticated"), ("Group", "system:unauthenticated")]
    return [
        _binding("cluster-admin", "cluster-admin", [("Group", "system:masters")]),
        _binding("system:basic-user", "system:basic-user", [("Group", "system:authenticated")]),
        _binding("system:discovery", "system:discovery", [("Group", "system:authenticated")]),
        _binding("system:public-info-viewer", "system:public-info-viewer", everyone),
        _binding(ISSUER_DISCOVERY, ISSUER_DISCOVERY, [("Group", "system:serviceaccounts")]),
        _binding("corral:dashboard", "corral:dashboard", everyone),
        _binding("system:node", "system:node", [("Group", "system:nodes")]),
        _binding("system:kube-scheduler", "system:kube-scheduler",
                 [("User", "system:kube-scheduler")]),
        _binding("system:kube-controller-manager", "system:kube-controller-manager",
                 [("User", "system:kube-controller-manager")]),
        _binding(MESOS_MASTER, MESOS_MASTER, [("User", MESOS_MASTER)]),
        _binding("corral:mesos-framework", "corral:mesos-framework",
                 [("User", "corral-framework")]),
        *_bootstrap_bindings(),
    ]
