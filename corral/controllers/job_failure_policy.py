"""A Job's podFailurePolicy: the first rule a failed pod matches decides what
its failure does, as Kubernetes' job controller decides it.

    FailJob    the Job fails at once (reason PodFailurePolicy), its pods are deleted
    Ignore     the failure does not count towards backoffLimit; a new pod replaces it
    Count      the failure counts, as without a policy (also when no rule matches)

A rule matches by exit codes (containers, init containers first, that terminated
with a non-zero code, optionally only the one named; In or NotIn the values) or
by a pod condition the pod carries.
Only a pod in phase Failed is matched: one deleted before it ended just counts.
Limits: Kubernetes marks evicted and preempted pods with DisruptionTarget and
waits for a deleted pod to reach Failed (podReplacementPolicy Failed) before it
matches it; corral sets no DisruptionTarget and counts a deleted pod at once,
so an onPodConditions rule on it does not apply to evictions yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.controllers.pods import phase
from corral.objects import Obj, meta, spec, status


@dataclass(frozen=True)
class Match:
    action: str
    message: str  # the Job's Failed condition says it for FailJob


def first_match(job: Obj, pod: Obj) -> Match | None:
    """The rule of ``job``'s podFailurePolicy that the failed ``pod`` matches."""
    policy = spec(job).get("podFailurePolicy")
    if not isinstance(policy, dict) or phase(pod) != "Failed":
        return None
    where = f"{meta(pod).get('namespace')}/{meta(pod).get('name')}"
    for i, rule in enumerate(policy.get("rules") or []):
        action = str(rule.get("action") or "")
        exit_codes = rule.get("onExitCodes")
        if isinstance(exit_codes, dict):
            found = _exit_code_match(exit_codes, pod)
            if found is not None:
                name, code = found
                return Match(action, f"Container {name} for pod {where} failed with exit code "
                                     f"{code} matching {action} rule at index {i}")
        for pattern in rule.get("onPodConditions") or []:
            if _has_condition(pod, pattern):
                return Match(action, f"Pod {where} has condition {pattern.get('type')} "
                                     f"matching {action} rule at index {i}")
    return None


def _exit_code_match(requirement: dict[str, Any], pod: Obj) -> tuple[str, int] | None:
    wanted = requirement.get("containerName")
    values = set(requirement.get("values") or [])
    is_in = requirement.get("operator") == "In"
    for cs in [*(status(pod).get("initContainerStatuses") or []),
               *(status(pod).get("containerStatuses") or [])]:
        terminated = (cs.get("state") or {}).get("terminated")
        if not isinstance(terminated, dict) or (wanted and cs.get("name") != wanted):
            continue
        code = int(terminated.get("exitCode") or 0)
        if code != 0 and (code in values) == is_in:
            return str(cs.get("name")), code
    return None


def _has_condition(pod: Obj, pattern: dict[str, Any]) -> bool:
    wanted = pattern.get("status") or "True"
    return any(c.get("type") == pattern.get("type") and c.get("status") == wanted
               for c in status(pod).get("conditions") or [])
