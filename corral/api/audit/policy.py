"""Audit policy (audit.k8s.io/v1 Policy), as kube-apiserver reads --audit-policy-file:
which requests are logged, and how much of each.

    apiVersion: audit.k8s.io/v1
    kind: Policy
    omitStages: [RequestReceived]          # for every rule
    rules:                                 # the first rule that matches decides
      - level: None                        # None | Metadata | Request | RequestResponse
        users: [system:kube-proxy]         # each list: empty or absent matches all
        userGroups: [system:nodes]
        verbs: [watch]
        resources: [{group: "", resources: [endpoints, "pods/log", "*/status"],
                     resourceNames: [x]}]
        namespaces: [kube-system]
        nonResourceURLs: ["/healthz*"]     # a trailing * matches a prefix
        omitStages: [ResponseStarted]

A request no rule matches is not logged. Matching is Kubernetes' (policy/checker.go):
``resources``/``namespaces`` only match resource requests, ``nonResourceURLs``
only the others; "pods/log" names a subresource, "*/log" any resource's, "pods/*"
every subresource of pods, "*" every resource of the group.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from corral.api.auth import write_private
from corral.api.authz import Attributes

API_VERSION = "audit.k8s.io/v1"
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


class PolicyError(ValueError):
    """The audit log cannot be set up: the policy file is not a Policy corral can
    use, or the log file cannot be written."""


class Level(enum.IntEnum):
    NONE = 0  # not logged
    METADATA = 1  # who, what, when, the answer's code: no bodies
    REQUEST = 2  # and the request's body
    REQUEST_RESPONSE = 3  # and the response's body

    @property
    def text(self) -> str:
        return _LEVEL_TEXT[self]


_LEVEL_TEXT = {Level.NONE: "None", Level.METADATA: "Metadata", Level.REQUEST: "Request",
               Level.REQUEST_RESPONSE: "RequestResponse"}
_LEVELS = {text: level for level, text in _LEVEL_TEXT.items()}


@dataclass(frozen=True)
class GroupResources:
    group: str
    resources: tuple[str, ...]
    resource_names: tuple[str, ...]

    def matches(self, attrs: Attributes) -> bool:
        if self.group != attrs.api_group:
            return False
        if not self.resources:
            return True
        if self.resource_names and attrs.name not in self.resource_names:
            return False
        sub = attrs.subresource
        combined = f"{attrs.resource}/{sub}" if sub else attrs.resource
        return any(r in (combined, "*") or (sub and r == f"*/{sub}")
                   or (r.endswith("/*") and r[:-2] == attrs.resource) for r in self.resources)


@dataclass(frozen=True)
class Rule:
    level: Level
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()

    def matches(self, attrs: Attributes) -> bool:
        user = attrs.user
        if self.users and user.name not in self.users:
            return False
        if self.user_groups and not set(self.user_groups) & set(user.groups):
            return False
        if self.verbs and attrs.verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            return attrs.resource_request and self._matches_resource(attrs)
        if self.non_resource_urls:
            return not attrs.resource_request and any(
                attrs.path == u or (u.endswith("*") and attrs.path.startswith(u[:-1]))
                for u in self.non_resource_urls)
        return True

    def _matches_resource(self, attrs: Attributes) -> bool:
        if self.namespaces and attrs.namespace not in self.namespaces:
            return False
        return not self.resources or any(gr.matches(attrs) for gr in self.resources)


@dataclass(frozen=True)
class Decision:
    level: Level
    omit_stages: frozenset[str]


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    omit_stages: tuple[str, ...] = ()

    def decide(self, attrs: Attributes) -> Decision:
        for rule in self.rules:
            if rule.matches(attrs):
                return Decision(rule.level, frozenset(self.omit_stages + rule.omit_stages))
        return Decision(Level.NONE, frozenset(self.omit_stages))


def load_policy(path: Path) -> Policy:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PolicyError(f"cannot read the audit policy {path}: {err.strerror}") from None
    return parse_policy(raw)


def parse_policy(raw: bytes) -> Policy:
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise PolicyError(f"not YAML or JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Policy" or doc.get(
            "apiVersion") != API_VERSION:
        raise PolicyError(f"the file must hold one Policy of {API_VERSION}")
    rules = doc.get("rules")
    if not isinstance(rules, list) or not rules:
        raise PolicyError("rules: Required value: at least one rule")
    return Policy(tuple(_rule(r, f"rules[{i}]") for i, r in enumerate(rules)),
                  _stages(doc.get("omitStages"), "omitStages"))


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be an object")
    level = _LEVELS.get(raw.get("level"))  # type: ignore[arg-type]
    if level is None:
        raise PolicyError(f"{where}.level: Unsupported value: {raw.get('level')!r}: supported "
                          f"values: {', '.join(_LEVELS)}")
    urls = _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs")
    resources = _group_resources(raw.get("resources"), f"{where}.resources")
    namespaces = _strings(raw.get("namespaces"), f"{where}.namespaces")
    if urls and (resources or namespaces):
        raise PolicyError(f"{where}.nonResourceURLs: Invalid value: rules cannot apply to both "
                          "regular resources and non-resource URLs")
    for u in urls:
        if not u.startswith("/") or "*" in u[:-1]:
            raise PolicyError(f"{where}.nonResourceURLs: Invalid value: {u!r}: a path "
                              "starting with '/', '*' only at its end")
    return Rule(level, _strings(raw.get("users"), f"{where}.users"),
                _strings(raw.get("userGroups"), f"{where}.userGroups"),
                _strings(raw.get("verbs"), f"{where}.verbs"), resources, namespaces, urls,
                _stages(raw.get("omitStages"), f"{where}.omitStages"))


def _group_resources(raw: Any, where: str) -> tuple[GroupResources, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError(f"{where}: must be a list")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise PolicyError(f"{where}[{i}]: must be an object")
        group = item.get("group", "")
        if not isinstance(group, str):
            raise PolicyError(f"{where}[{i}].group: must be a string")
        names = _strings(item.get("resourceNames"), f"{where}[{i}].resourceNames")
        out.append(GroupResources(group, _strings(item.get("resources"),
                                                  f"{where}[{i}].resources"), names))
    return tuple(out)


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise PolicyError(f"{where}: must be a list of strings")
    return tuple(raw)


def _stages(raw: Any, where: str) -> tuple[str, ...]:
    stages = _strings(raw, where)
    for s in stages:
        if s not in STAGES:
            raise PolicyError(f"{where}: Unsupported value: {s!r}: supported values: "
                              f"{', '.join(STAGES)}")
    return stages


# What `corral up` writes to DATA_DIR/audit-policy.yaml, and what --audit-log-path
# uses without --audit-policy-file.
DEFAULT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
# corral writes one line per request when its response is complete.
omitStages: [RequestReceived, ResponseStarted]
rules:
  # Health, version and metrics probes: frequent and of no interest.
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version", "/version/", "/metrics"]
  # Heartbeats and leader election renew Leases every few seconds; Events are
  # a record of their own.
  - level: None
    verbs: [get, update, patch, watch]
    resources: [{group: coordination.k8s.io, resources: [leases]}]
  - level: None
    resources: [{group: "", resources: [events]}, {group: events.k8s.io, resources: [events]}]
  # Secrets, ConfigMaps and tokens: who touched which, never their values
  # (Kubernetes' advice; corral also caps these at Metadata whatever the policy).
  - level: Metadata
    resources:
      - {group: "", resources: [secrets, configmaps, serviceaccounts/token]}
      - {group: authentication.k8s.io, resources: [tokenreviews]}
      - {group: certificates.k8s.io, resources: [certificatesigningrequests]}
  # Reads: who read what.
  - level: Metadata
    verbs: [get, list, watch]
  # Writes: who changed what, and what they sent.
  - level: Request
"""


def default_policy() -> Policy:
    return parse_policy(DEFAULT_POLICY.encode())


DEFAULT_POLICY_FILE = "audit-policy.yaml"


def ensure_policy_file(data_dir: Path) -> Path:
    """DATA_DIR/audit-policy.yaml (`corral up`): DEFAULT_POLICY, made if missing, for
    the operator to read and edit."""
    path = data_dir / DEFAULT_POLICY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, DEFAULT_POLICY)
    return path

