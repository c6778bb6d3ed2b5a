"""Validation of a Job's failure handling, after Kubernetes' validateJobSpec and
validatePodFailurePolicy: the per-index back-off (backoffLimitPerIndex,
maxFailedIndexes, only for Indexed Jobs) and the rules a failed pod is matched
against (corral/controllers/job_failure_policy.py)."""

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
MAX_FAILED_INDEXES = 100_000  # caps the length of status.failedIndexes
COMPLETIONS_SOFT_LIMIT = 100_000  # above it, per-index back-off needs tighter bounds
HIGH_COMPLETIONS_MAX_PARALLELISM = 10_000
HIGH_COMPLETIONS_MAX_FAILED_INDEXES = 10_000


def validate_per_index_backoff(job: Job, errs: FieldErrors) -> None:
    """backoffLimitPerIndex and maxFailedIndexes, with Kubernetes' words."""
    spec = job.spec
    per_index, max_failed = spec.backoff_limit_per_index, spec.max_failed_indexes
    errs.non_negative("spec.backoffLimitPerIndex", per_index)
    errs.non_negative("spec.maxFailedIndexes", max_failed)
    if max_failed is not None and per_index is None:
        errs.required("spec.backoffLimitPerIndex", "when maxFailedIndexes is specified")
    if spec.completion_mode != "Indexed":
        for path, value in (("spec.backoffLimitPerIndex", per_index),
                            ("spec.maxFailedIndexes", max_failed)):
            if value is not None:
                errs.invalid(path, value, "requires indexed completion mode")
        return
    completions = spec.completions
    if max_failed is not None and completions is not None and max_failed > completions:
        errs.invalid("spec.maxFailedIndexes", max_failed,
                     "must be less than or equal to completions")
    if max_failed is not None and max_failed > MAX_FAILED_INDEXES:
        errs.invalid("spec.maxFailedIndexes", max_failed,
                     f"must be less than or equal to {MAX_FAILED_INDEXES}")
    if completions is None or completions <= COMPLETIONS_SOFT_LIMIT or per_index is None:
        return
    high = (f"when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff "
            "limit per index")
    if max_failed is None:
        errs.required("spec.maxFailedIndexes",
                      f"must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}")
    elif max_failed > HIGH_COMPLETIONS_MAX_FAILED_INDEXES:
        errs.invalid("spec.maxFailedIndexes", max_failed,
                     f"must be less than or equal to {HIGH_COMPLETIONS_MAX_FAILED_INDEXES} {high}")
    if spec.parallelism is not None and spec.parallelism > HIGH_COMPLETIONS_MAX_PARALLELISM:
        errs.invalid("spec.parallelism", spec.parallelism,
                     f"must be less than or equal to {HIGH_COMPLETIONS_MAX_PARALLELISM} {high}")


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
