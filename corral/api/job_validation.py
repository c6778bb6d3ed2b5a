"""Validation of a Job's podFailurePolicy, after Kubernetes' validatePodFailurePolicy:
the rules a failed pod is matched against (corral/controllers/job_failure_policy.py)."""

from __future__ import annotations

from corral.api.errors import Cause
from corral.api.field_errors import FieldErrors
from corral.api.kinds.batch import Job, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule

MAX_RULES = 20
MAX_EXIT_CODES = 255
MAX_CONDITION_PATTERNS = 20
ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
OPERATORS = ("In", "NotIn")
CONDITION_STATUSES = ("False", "True", "Unknown")


def validate_pod_failure_policy(job: Job, errs: FieldErrors) -> None:
    policy = job.spec.pod_failure_policy
    if policy is None:
        return
    restart = job.spec.template.spec.restart_policy
    if restart != "Never":
        errs.invalid("spec.template.spec.restartPolicy", restart,
                     'only "Never" is supported when podFailurePolicy is specified')
    path = "spec.podFailurePolicy.rules"
    if len(policy.rules) > MAX_RULES:
        errs.too_many(path, len(policy.rules), MAX_RULES)
        return
    spec = job.spec.template.spec
    names = {c.name for c in [*spec.containers, *(spec.init_containers or [])]}
    for i, rule in enumerate(policy.rules):
        _validate_rule(rule, f"{path}[{i}]", names, job.spec.backoff_limit_per_index, errs)


def _validate_rule(rule: PodFailurePolicyRule, path: str, names: set[str],
                   per_index: int | None, errs: FieldErrors) -> None:
    if not rule.action:
        errs.required(f"{path}.action")
    else:
        errs.one_of(f"{path}.action", rule.action, ACTIONS)
    if rule.action == "FailIndex" and per_index is None:
        errs.invalid(f"{path}.action", rule.action, "requires the backoffLimitPerIndex to be set")
    if rule.on_exit_codes is not None and rule.on_pod_conditions is not None:
        errs.append(Cause(path, "Invalid value: specifying both OnExitCodes and "
                                "OnPodConditions is not supported", "FieldValueInvalid"))
    elif rule.on_exit_codes is None and rule.on_pod_conditions is None:
        errs.append(Cause(path, "Invalid value: specifying one of OnExitCodes and "
                                "OnPodConditions is required", "FieldValueInvalid"))
    if rule.on_exit_codes is not None:
        _validate_exit_codes(rule.on_exit_codes, f"{path}.onExitCodes", names, errs)
    patterns = rule.on_pod_conditions or []
    if len(patterns) > MAX_CONDITION_PATTERNS:
        errs.too_many(f"{path}.onPodConditions", len(patterns), MAX_CONDITION_PATTERNS)
    for j, pattern in enumerate(patterns):
        at = f"{path}.onPodConditions[{j}]"
        if not pattern.type:
            errs.required(f"{at}.type")
        if pattern.status is not None:
            errs.one_of(f"{at}.status", pattern.status, CONDITION_STATUSES)


def _validate_exit_codes(req: PodFailurePolicyOnExitCodesRequirement, path: str,
                         names: set[str], errs: FieldErrors) -> None:
    if req.container_name is not None and req.container_name not in names:
        errs.invalid(f"{path}.containerName", req.container_name,
                     "must be one of the container or initContainer names in the pod template")
    if not req.operator:
        errs.required(f"{path}.operator")
    else:
        errs.one_of(f"{path}.operator", req.operator, OPERATORS)
    if not req.values:
        errs.required(f"{path}.values", "at least one value is required")
    elif len(req.values) > MAX_EXIT_CODES:
        errs.too_many(f"{path}.values", len(req.values), MAX_EXIT_CODES)
    for k, value in enumerate(req.values):
        at = f"{path}.values[{k}]"
        if req.operator == "In" and value == 0:
            errs.invalid(at, value, "must not be 0 for the In operator")
        if k > 0 and value == req.values[k - 1]:
            errs.duplicate(at, value)
        elif k > 0 and value < req.values[k - 1]:
            errs.invalid(at, value, "must be ordered")
