"""Validation of a pod spec, wherever it sits: a Pod's spec or a workload's
spec.template.spec. Every check appends to a shared FieldErrors under the wire
path of the field it checks."""

from __future__ import annotations

from corral.api import names
from corral.api.field_errors import FieldErrors
from corral.api.kinds.affinity import (
    Affinity,
    NodeSelectorRequirement,
    PodAffinity,
    Toleration,
    TopologySpreadConstraint,
)
from corral.api.kinds.base import IntOrString
from corral.api.kinds.container import Container, ContainerPort, Probe, ResourceRequirements
from corral.api.kinds.meta import LabelSelector
from corral.api.kinds.pod import PodSpec
from corral.api.quantity import MAX_QUANTITY, QuantityTooLarge, parse_quantity

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("TCP", "UDP", "SCTP")
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
NODE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_pod_spec(spec: PodSpec, path: str, errs: FieldErrors,
                      restart_policies: tuple[str, ...] = RESTART_POLICIES) -> None:
    if not spec.containers:
        errs.required(f"{path}.containers")
    volumes = _validate_volumes(spec, path, errs)
    seen: set[str] = set()
    for field, containers in (("initContainers", spec.init_containers or []),
                              ("containers", spec.containers)):
        for i, container in enumerate(containers):
            where = f"{path}.{field}[{i}]"
            _validate_container(container, where, errs, volumes)
            if container.name in seen:
                errs.duplicate(f"{where}.name", container.name)
            seen.add(container.name)
    if spec.restart_policy is not None and spec.restart_policy not in restart_policies:
        errs.not_supported(f"{path}.restartPolicy", spec.restart_policy, restart_policies)
    errs.one_of(f"{path}.dnsPolicy", spec.dns_policy, DNS_POLICIES)
    errs.one_of(f"{path}.preemptionPolicy", spec.preemption_policy, PREEMPTION_POLICIES)
    errs.non_negative(f"{path}.terminationGracePeriodSeconds",
                      spec.termination_grace_period_seconds)
    errs.in_range(f"{path}.activeDeadlineSeconds", spec.active_deadline_seconds, 1, 2**31 - 1)
    for field, value in (("hostname", spec.hostname), ("subdomain", spec.subdomain)):
        if value:
            errs.each(f"{path}.{field}", value, names.dns1123_label(value))
    validate_labels(spec.node_selector, f"{path}.nodeSelector", errs)
    for i, toleration in enumerate(spec.tolerations or []):
        _validate_toleration(toleration, f"{path}.tolerations[{i}]", errs)
    if spec.affinity is not None:
        _validate_affinity(spec.affinity, f"{path}.affinity", errs)
    for i, constraint in enumerate(spec.topology_spread_constraints or []):
        _validate_spread(constraint, f"{path}.topologySpreadConstraints[{i}]", errs)


def validate_labels(labels: dict[str, str] | None, path: str, errs: FieldErrors) -> None:
    for key, value in (labels or {}).items():
        errs.each(path, key, names.qualified_name(key))
        errs.each(path, value, names.label_value(value))


def validate_label_selector(selector: LabelSelector, path: str, errs: FieldErrors) -> None:
    validate_labels(selector.match_labels, f"{path}.matchLabels", errs)
    for i, req in enumerate(selector.match_expressions or []):
        where = f"{path}.matchExpressions[{i}]"
        errs.each(f"{where}.key", req.key, names.qualified_name(req.key))
        if req.operator not in SELECTOR_OPERATORS:
            errs.not_supported(f"{where}.operator", req.operator, SELECTOR_OPERATORS)
        _check_values(req.operator, req.values, f"{where}.values", errs)


def _validate_volumes(spec: PodSpec, path: str, errs: FieldErrors) -> set[str]:
    seen: set[str] = set()
    for i, volume in enumerate(spec.volumes or []):
        where = f"{path}.volumes[{i}].name"
        errs.each(where, volume.name, names.dns1123_label(volume.name))
        if volume.name in seen:
            errs.duplicate(where, volume.name)
        seen.add(volume.name)
    return seen


# ---- containers -----------------------------------------------------------------

def _validate_container(c: Container, path: str, errs: FieldErrors, volumes: set[str]) -> None:
    errs.each(f"{path}.name", c.name, names.dns1123_label(c.name))
    errs.one_of(f"{path}.imagePullPolicy", c.image_pull_policy, PULL_POLICIES)
    port_names: set[str] = set()
    for i, port in enumerate(c.ports or []):
        _validate_container_port(port, f"{path}.ports[{i}]", errs, port_names)
    for i, env in enumerate(c.env or []):
        if not env.name:
            errs.required(f"{path}.env[{i}].name")
        if env.value_from is not None and env.value is not None:
            errs.invalid(f"{path}.env[{i}].valueFrom", "", "may not be specified when "
                         "`value` is not empty")
    if c.resources is not None:
        _validate_resources(c.resources, f"{path}.resources", errs)
    for field, probe in c.probes().items():
        _validate_probe(probe, field, f"{path}.{field}", errs)
    for i, mount in enumerate(c.volume_mounts or []):
        if mount.name not in volumes:
            errs.not_found(f"{path}.volumeMounts[{i}].name", mount.name)
        if not mount.mount_path:
            errs.required(f"{path}.volumeMounts[{i}].mountPath")


def _validate_container_port(port: ContainerPort, path: str, errs: FieldErrors,
                             seen: set[str]) -> None:
    errs.in_range(f"{path}.containerPort", port.container_port, 1, 65535)
    if port.host_port:
        errs.in_range(f"{path}.hostPort", port.host_port, 1, 65535)
    errs.one_of(f"{path}.protocol", port.protocol, PROTOCOLS)
    if port.name:
        errs.each(f"{path}.name", port.name, names.port_name(port.name))
        if port.name in seen:
            errs.duplicate(f"{path}.name", port.name)
        seen.add(port.name)


def validate_quantities(quantities: dict[str, str] | None, path: str,
                        errs: FieldErrors) -> None:
    """Every quantity parses and none is negative."""
    for name, text in (quantities or {}).items():
        try:
            value = parse_quantity(text)
        except QuantityTooLarge:
            errs.invalid(f"{path}[{name}]", text,
                         f"must be less than or equal to {MAX_QUANTITY}")
            continue
        except ValueError:
            errs.invalid(f"{path}[{name}]", text, "quantities must match the regular "
                         "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
            continue
        if value < 0:
            errs.invalid(f"{path}[{name}]", text, "must be greater than or equal to 0")


def _validate_resources(res: ResourceRequirements, path: str, errs: FieldErrors) -> None:
    before = len(errs)
    validate_quantities(res.requests, f"{path}.requests", errs)
    validate_quantities(res.limits, f"{path}.limits", errs)
    if len(errs) > before:
        return
    for where, quantities in (("limits", res.limits), ("requests", res.requests)):
        for name, quantity in (quantities or {}).items():
            if not overcommit_allowed(name) and parse_quantity(quantity) % 1:
                errs.invalid(f"{path}.{where}[{name}]", quantity, "must be an integer")
    for name, request in (res.requests or {}).items():
        limit = (res.limits or {}).get(name)
        if limit is None:
            if not overcommit_allowed(name):
                errs.required(f"{path}.limits[{name}]",
                              "Limit must be set for non overcommitable resources")
        elif not overcommit_allowed(name) and parse_quantity(request) != parse_quantity(limit):
            errs.invalid(f"{path}.requests[{name}]", request,
                         f"must be equal to {name} limit of {limit}")
        elif parse_quantity(request) > parse_quantity(limit):
            errs.invalid(f"{path}.requests[{name}]", request,
                         f"must be less than or equal to {name} limit of {limit}")


def overcommit_allowed(name: str) -> bool:
    """Kubernetes' IsOvercommitAllowed: native resources (no domain, or a
    kubernetes.io one) other than hugepages may be requested below their limit;
    extended resources (example.com/gpu) are whole units, request equal to limit."""
    domain, slash, _ = name.rpartition("/")
    native = not slash or domain == "kubernetes.io" or domain.endswith(".kubernetes.io")
    return native and not name.startswith("hugepages-")


def _validate_probe(probe: Probe, field: str, path: str, errs: FieldErrors) -> None:
    handlers = probe.handlers()
    if not handlers:
        errs.required(path, "must specify a handler type")
    elif len(handlers) > 1:
        errs.forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type")
    if probe.http_get is not None:
        _validate_named_port(probe.http_get.port, f"{path}.httpGet.port", errs)
        errs.one_of(f"{path}.httpGet.scheme", probe.http_get.scheme, ("HTTP", "HTTPS"))
    if probe.tcp_socket is not None:
        _validate_named_port(probe.tcp_socket.port, f"{path}.tcpSocket.port", errs)
    if probe.grpc is not None:
        errs.in_range(f"{path}.grpc.port", probe.grpc.port, 1, 65535)
    errs.non_negative(f"{path}.initialDelaySeconds", probe.initial_delay_seconds)
    for name, value in (("timeoutSeconds", probe.timeout_seconds),
                        ("periodSeconds", probe.period_seconds),
                        ("successThreshold", probe.success_threshold),
                        ("failureThreshold", probe.failure_threshold),
                        ("terminationGracePeriodSeconds",
                         probe.termination_grace_period_seconds)):
        errs.positive(f"{path}.{name}", value)
    if field != "readinessProbe" and probe.success_threshold not in (None, 1):
        errs.invalid(f"{path}.successThreshold", probe.success_threshold, "must be 1")


def _validate_named_port(port: IntOrString, path: str, errs: FieldErrors) -> None:
    if isinstance(port, int):
        errs.in_range(path, port, 1, 65535)
    else:
        errs.each(path, port, names.port_name(port))


# ---- placement ----------------------------------------------------------------------

def _validate_toleration(t: Toleration, path: str, errs: FieldErrors) -> None:
    if t.key:
        errs.each(f"{path}.key", t.key, names.qualified_name(t.key))
    errs.one_of(f"{path}.operator", t.operator, TOLERATION_OPERATORS)
    exists = t.operator == "Exists"
    if not t.key and not exists:
        errs.invalid(f"{path}.operator", t.operator or "", "operator must be Exists when "
                     '`key` is empty, which means "match all values and all keys"')
    if exists and t.value:
        errs.invalid(f"{path}.operator", t.operator, "value must be empty when `operator` "
                     "is 'Exists'")
    if t.effect:
        errs.one_of(f"{path}.effect", t.effect, TAINT_EFFECTS)
    if t.toleration_seconds is not None and t.effect != "NoExecute":
        errs.invalid(f"{path}.effect", t.effect or "", "effect must be 'NoExecute' when "
                     "`tolerationSeconds` is set")


def _validate_affinity(affinity: Affinity, path: str, errs: FieldErrors) -> None:
    node = affinity.node_affinity
    if node is not None:
        where = f"{path}.nodeAffinity"
        required = node.required_during_scheduling_ignored_during_execution
        if required is not None:
            terms_path = f"{where}.requiredDuringSchedulingIgnoredDuringExecution"
            if not required.node_selector_terms:
                errs.required(f"{terms_path}.nodeSelectorTerms",
                              "must have at least one node selector term")
            for i, term in enumerate(required.node_selector_terms):
                _validate_node_term(term.match_expressions, term.match_fields,
                                    f"{terms_path}.nodeSelectorTerms[{i}]", errs)
        preferred = node.preferred_during_scheduling_ignored_during_execution or []
        for i, pref in enumerate(preferred):
            p = f"{where}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            errs.in_range(f"{p}.weight", pref.weight, 1, 100)
            _validate_node_term(pref.preference.match_expressions,
                                pref.preference.match_fields, f"{p}.preference", errs)
    for field, pod_affinity in (("podAffinity", affinity.pod_affinity),
                                ("podAntiAffinity", affinity.pod_anti_affinity)):
        if pod_affinity is not None:
            _validate_pod_affinity(pod_affinity, f"{path}.{field}", errs)


def _validate_node_term(expressions: list[NodeSelectorRequirement] | None,
                        fields: list[NodeSelectorRequirement] | None, path: str,
                        errs: FieldErrors) -> None:
    for name, reqs in (("matchExpressions", expressions), ("matchFields", fields)):
        for i, req in enumerate(reqs or []):
            where = f"{path}.{name}[{i}]"
            if req.operator not in NODE_OPERATORS:
                errs.not_supported(f"{where}.operator", req.operator, NODE_OPERATORS)
            _check_values(req.operator, req.values, f"{where}.values", errs)


def _check_values(operator: str, values: list[str] | None, path: str,
                  errs: FieldErrors) -> None:
    if operator in ("In", "NotIn") and not values:
        errs.required(path, "must be specified when `operator` is 'In' or 'NotIn'")
    elif operator in ("Exists", "DoesNotExist") and values:
        errs.forbidden(path, "may not be specified when `operator` is 'Exists' or "
                       "'DoesNotExist'")
    elif operator in ("Gt", "Lt"):
        if len(values or []) != 1:
            errs.required(path, "must be specified single value when `operator` is 'Lt' "
                          "or 'Gt'")
        elif not _is_int(values[0] if values else ""):
            errs.invalid(f"{path}[0]", (values or [""])[0], "must be an integer")


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _validate_pod_affinity(affinity: PodAffinity, path: str, errs: FieldErrors) -> None:
    required = affinity.required_during_scheduling_ignored_during_execution or []
    for i, term in enumerate(required):
        where = f"{path}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"
        _validate_affinity_term(term.topology_key, term.label_selector, where, errs)
    preferred = affinity.preferred_during_scheduling_ignored_during_execution or []
    for i, weighted in enumerate(preferred):
        where = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        errs.in_range(f"{where}.weight", weighted.weight, 1, 100)
        term = weighted.pod_affinity_term
        _validate_affinity_term(term.topology_key, term.label_selector,
                                f"{where}.podAffinityTerm", errs)


def _validate_affinity_term(topology_key: str, selector: LabelSelector | None, path: str,
                            errs: FieldErrors) -> None:
    if not topology_key:
        errs.required(f"{path}.topologyKey", "can not be empty")
    else:
        errs.each(f"{path}.topologyKey", topology_key, names.qualified_name(topology_key))
    if selector is not None:
        validate_label_selector(selector, f"{path}.labelSelector", errs)


def _validate_spread(c: TopologySpreadConstraint, path: str, errs: FieldErrors) -> None:
    errs.positive(f"{path}.maxSkew", c.max_skew)
    if not c.topology_key:
        errs.required(f"{path}.topologyKey", "can not be empty")
    errs.one_of(f"{path}.whenUnsatisfiable", c.when_unsatisfiable,
                ("DoNotSchedule", "ScheduleAnyway"))
    if c.label_selector is not None:
        validate_label_selector(c.label_selector, f"{path}.labelSelector", errs)

