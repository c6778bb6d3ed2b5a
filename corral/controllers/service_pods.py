"""Which pods a Service selects and where each really serves its ports: what
the Endpoints and EndpointSlice controllers both publish.

    selects(service, pod)      the Service's selector matches the pod's labels
    serving_ports(service, pod) → (ip, [(service port, port)]) or None
      each Service port's targetPort (a number or a container port's name)
      looked up in the pod's status.portMappings (corral's agent allocates host
      ports) → hostIP:hostPort; a pod without a mapping listens on the
      containerPort itself; a port the pod does not have is left out
"""

from __future__ import annotations

from corral.objects import Obj, meta, spec, status


def selects(service: Obj, pod: Obj) -> bool:
    selector = spec(service).get("selector") or {}
    labels = meta(pod).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def selected_pods(service: Obj, pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if selects(service, p)]


def _mapping(pod: Obj, target: int | str) -> Obj | None:
    for m in status(pod).get("portMappings") or []:
        if isinstance(target, str) and m.get("name") == target:
            return dict(m)
        if isinstance(target, int) and m.get("containerPort") == target:
            return dict(m)
    return None


def _container_port(pod: Obj, name: str) -> int | None:
    for c in spec(pod).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == name:
                return int(p["containerPort"])
    return None


def resolve_port(pod: Obj, service_port: Obj) -> tuple[str | None, int] | None:
    """(hostIP or None, port) where the pod serves this Service port; None if
    the pod has no such port."""
    raw = service_port.get("targetPort", service_port.get("port"))
    if raw is None:
        return None
    target: int | str = int(raw) if isinstance(raw, int) or str(raw).isdigit() else str(raw)
    mapping = _mapping(pod, target)
    if mapping is not None:
        return mapping.get("hostIP"), int(mapping["hostPort"])
    if isinstance(target, str):
        number = _container_port(pod, target)
        return (None, number) if number is not None else None
    return None, int(target)


def serving_ports(service: Obj, pod: Obj) -> tuple[str, list[tuple[Obj, int]]] | None:
    """The address the pod serves the Service on and the port behind each
    Service port it has; None for a pod without an address yet."""
    pod_ip = status(pod).get("podIP") or status(pod).get("hostIP")
    if not pod_ip:
        return None
    resolved = [(p, resolve_port(pod, p)) for p in spec(service).get("ports") or []]
    usable = [(p, r) for p, r in resolved if r is not None]
    ip = next((r[0] for _, r in usable if r[0]), None) or pod_ip
    return str(ip), [(p, r[1]) for p, r in usable]
