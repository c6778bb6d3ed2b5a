"""What a StatefulSet should do, as pure functions of its pods by ordinal
(Kubernetes' stateful set control: updateStatefulSet).

    ordinals 0..replicas-1, lowest first:
      missing ─► create (at the current revision below the partition, else the
                 update revision); OrderedReady: stop until it is Running and Ready
      failed  ─► delete (recreated on the next pass, same name)
    ordinals ≥ replicas (condemned), highest first ─► delete; OrderedReady: one at
      a time, and only while every kept pod is Running and Ready
    RollingUpdate: from the highest ordinal down to the partition, pods not at the
      update revision are deleted (they come back at the update revision), while
      fewer than rollingUpdate.maxUnavailable (default 1; a percentage of replicas,
      rounded down, at least 1) of the replicas are not Running and Ready
    OnDelete: pods change revision only when someone deletes them
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from corral.controllers.history import REVISION_HASH
from corral.controllers.pods import is_active, is_available, is_ready, phase
from corral.intstr import scaled_value
from corral.objects import Obj, is_deleting, labels_of, meta, name_of, spec, status

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal_of(set_name: str, pod: Obj) -> int | None:
    """web-3 of StatefulSet web → 3; None for a name not of that form."""
    prefix, _, suffix = name_of(pod).rpartition("-")
    if prefix != set_name or not suffix.isdigit() or (suffix != "0" and suffix[0] == "0"):
        return None
    return int(suffix)


def claim_volumes(sts: Obj, pod_name: str, volumes: list[Obj]) -> list[Obj]:
    """The template's volumes with one per volumeClaimTemplate, claiming
    ``<template>-<pod>`` as Kubernetes names the claim (the agent keeps that
    directory on the node: corral/agent/volumes.py)."""
    claims = [str(meta(t).get("name")) for t in spec(sts).get("volumeClaimTemplates") or []]
    kept = [v for v in volumes if v.get("name") not in claims]
    return kept + [{"name": c, "persistentVolumeClaim": {"claimName": f"{c}-{pod_name}"}}
                   for c in claims]


def healthy(pod: Obj) -> bool:
    return phase(pod) == "Running" and is_ready(pod) and not is_deleting(pod)


def revision_of(pod: Obj) -> str:
    return labels_of(pod).get(REVISION_HASH, "")


@dataclass
class Plan:
    create: list[tuple[int, str]] = field(default_factory=list)  # (ordinal, revision)
    delete: list[Obj] = field(default_factory=list)


@dataclass(frozen=True)
class Settings:
    replicas: int
    parallel: bool
    on_delete: bool
    partition: int
    current_revision: str
    update_revision: str
    max_unavailable: int = 1  # pods a rolling update may have unhealthy at once


def settings_of(sts: Obj, current_revision: str, update_revision: str) -> Settings:
    s = spec(sts)
    strategy = s.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    replicas = int(s.get("replicas", 1))
    # getStatefulSetMaxUnavailable: a percentage rounds down, and at least one
    max_unavailable = max(scaled_value(rolling.get("maxUnavailable", 1), replicas,
                                       round_up=False), 1)
    return Settings(
        replicas=replicas, parallel=s.get("podManagementPolicy") == "Parallel",
        on_delete=strategy.get("type") == "OnDelete",
        partition=int(rolling.get("partition") or 0),
        current_revision=current_revision, update_revision=update_revision,
        max_unavailable=max_unavailable)


def plan(pods: dict[int, Obj], s: Settings) -> Plan:
    result = Plan()
    if not _fill(result, pods, s):
        return result
    if not _condemn(result, pods, s):
        return result
    if not s.on_delete:
        _roll(result, pods, s)
    return result


def _fill(result: Plan, pods: dict[int, Obj], s: Settings) -> bool:
    """Create and repair ordinals below replicas; False: OrderedReady must wait."""
    ordered = not s.parallel
    for ordinal in range(s.replicas):
        pod = pods.get(ordinal)
        if pod is None:
            below = not s.on_delete and ordinal < s.partition
            result.create.append((ordinal, s.current_revision if below else s.update_revision))
            if ordered:
                return False
        elif phase(pod) in ("Failed", "Succeeded") and not is_deleting(pod):
            result.delete.append(pod)
            if ordered:
                return False
        elif ordered and not healthy(pod):
            return False
    return True


def _condemn(result: Plan, pods: dict[int, Obj], s: Settings) -> bool:
    """Delete ordinals at or above replicas, highest first; False: wait."""
    condemned = sorted((o for o in pods if o >= s.replicas), reverse=True)
    for ordinal in condemned:
        pod = pods[ordinal]
        if is_deleting(pod):
            if not s.parallel:
                return False
            continue
        result.delete.append(pod)
        if not s.parallel:
            return False
    return not condemned


def _roll(result: Plan, pods: dict[int, Obj], s: Settings) -> None:
    """Kubernetes' rolling update: outdated pods are deleted from the highest
    ordinal down to the partition, as long as no more than maxUnavailable of the
    replicas are unhealthy (those already unhealthy count, wherever they are)."""
    unhealthy = sum(1 for o in range(s.replicas) if o not in pods or not healthy(pods[o]))
    budget = s.max_unavailable - unhealthy
    for ordinal in range(s.replicas - 1, s.partition - 1, -1):
        if budget <= 0:
            return
        pod = pods.get(ordinal)
        if pod is not None and revision_of(pod) != s.update_revision and not is_deleting(pod):
            result.delete.append(pod)
            budget -= 1


def stateful_status(sts: Obj, pods: list[Obj], s: Settings, now: datetime) -> Obj:
    """Kubernetes' status counts; the current revision becomes the update revision
    once every replica is updated and ready (completeRollingUpdate)."""
    min_ready = int(spec(sts).get("minReadySeconds") or 0)
    active = [p for p in pods if is_active(p)]
    ready = sum(1 for p in active if is_ready(p))
    updated = sum(1 for p in active if revision_of(p) == s.update_revision)
    current_revision = s.current_revision
    if not s.on_delete and updated == s.replicas and ready == s.replicas and \
            len(active) == s.replicas:
        current_revision = s.update_revision
    return {
        **status(sts),
        "observedGeneration": int(meta(sts).get("generation") or 1),
        "replicas": len(active), "readyReplicas": ready,
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
        "currentReplicas": sum(1 for p in active if revision_of(p) == current_revision),
        "updatedReplicas": updated,
        "currentRevision": current_revision, "updateRevision": s.update_revision,
    }
