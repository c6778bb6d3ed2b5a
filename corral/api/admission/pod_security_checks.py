"""The Pod Security Standards' checks, worded as Kubernetes' pod-security-admission
words them (k8s.io/pod-security-admission/policy/check_*.go), for the fields
corral serves; plus corral's own ``workingDir`` check.

Each check is a pure function of the pod spec returning ``(reason, detail)`` or
None. The order of the lists is Kubernetes' (its checks run in the order of
their files; baseline's, then restricted's), so a refusal reads the same:

    violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false
    (container "c" must set securityContext.allowPrivilegeEscalation=false), ...

Not checked (corral does not serve the fields): AppArmor, SELinux, Windows
host process, host probes/lifecycle handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from corral.objects import Obj

Violation = tuple[str, str]  # (forbidden reason, forbidden detail)
Check = Callable[[Obj], Violation | None]

# The capabilities a container runtime grants by default (Kubernetes' baseline).
DEFAULT_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
# Sysctls namespaced per pod that Kubernetes' baseline allows.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
})
# Volume types restricted allows (everything else, hostPath included, is refused).
RESTRICTED_VOLUME_TYPES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
})
VOLUME_SOURCE_FIELDS = RESTRICTED_VOLUME_TYPES | {
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
    "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
    "vsphereVolume", "quobyte", "azureDisk", "portworxVolume", "scaleIO", "storageos",
    "photonPersistentDisk", "image",
}


def join_quote(items: list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def containers(spec: Obj) -> Iterator[Obj]:
    """Kubernetes' visitContainers order: init containers, containers, ephemeral."""
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            if isinstance(container, dict):
                yield container


def _sc(obj: Obj) -> Obj:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def _names(spec: Obj, bad: Callable[[Obj], bool]) -> list[str]:
    return [str(c.get("name")) for c in containers(spec) if bad(c)]


def _who(names: list[str]) -> str:
    return f'{pluralize("container", "containers", len(names))} {join_quote(names)}'


# ---- baseline ---------------------------------------------------------------


def host_namespaces(spec: Obj) -> Violation | None:
    used = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC")
            if spec.get(field) is True]
    return ("host namespaces", ", ".join(used)) if used else None


def host_path_volumes(spec: Obj) -> Violation | None:
    names = [str(v.get("name")) for v in spec.get("volumes") or []
             if isinstance(v, dict) and v.get("hostPath") is not None]
    if not names:
        return None
    return "hostPath volumes", f'{pluralize("volume", "volumes", len(names))} {join_quote(names)}'


def host_ports(spec: Obj) -> Violation | None:
    bad: list[str] = []
    ports: set[str] = set()
    for c in containers(spec):
        used = [str(p.get("hostPort")) for p in c.get("ports") or []
                if isinstance(p, dict) and p.get("hostPort")]
        if used:
            bad.append(str(c.get("name")))
            ports.update(used)
    if not bad:
        return None
    return "hostPort", (f'{_who(bad)} {pluralize("uses", "use", len(bad))} '
                        f'{pluralize("hostPort", "hostPorts", len(ports))} '
                        f'{", ".join(sorted(ports))}')


def privileged(spec: Obj) -> Violation | None:
    names = _names(spec, lambda c: _sc(c).get("privileged") is True)
    if not names:
        return None
    return "privileged", f"{_who(names)} must not set securityContext.privileged=true"


def proc_mount(spec: Obj) -> Violation | None:
    values: set[str] = set()

    def bad(c: Obj) -> bool:
        mount = _sc(c).get("procMount")
        if mount not in (None, "Default"):
            values.add(str(mount))
            return True
        return False
    names = _names(spec, bad)
    if not names:
        return None
    return "procMount", (f"{_who(names)} must not set securityContext.procMount to "
                         f"{join_quote(sorted(values))}")


def sysctls(spec: Obj) -> Violation | None:
    names = [str(s.get("name")) for s in _sc(spec).get("sysctls") or []
             if isinstance(s, dict) and s.get("name") not in SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(names)) if names else None


def working_dir(spec: Obj) -> Violation | None:
    """corral's own: a process runtime has no container filesystem, so a
    ``workingDir`` is a directory of the node, outside the pod's sandbox."""
    names = _names(spec, lambda c: bool(c.get("workingDir")))
    if not names:
        return None
    return "workingDir", (f"{_who(names)} must not set workingDir: it names a directory "
                          "of the node, outside the pod's sandbox")


def _seccomp_type(obj: Obj) -> str | None:
    profile = _sc(obj).get("seccompProfile")
    return str(profile.get("type")) if isinstance(profile, dict) else None


def seccomp_baseline(spec: Obj) -> Violation | None:
    setters = ["pod"] if _seccomp_type(spec) == "Unconfined" else []
    names = _names(spec, lambda c: _seccomp_type(c) == "Unconfined")
    if names:
        setters.append(_who(names))
    if not setters:
        return None
    return "seccompProfile", (f"{' and '.join(setters)} must not set "
                              'securityContext.seccompProfile.type to "Unconfined"')


def capabilities_baseline(spec: Obj) -> Violation | None:
    added: set[str] = set()

    def bad(c: Obj) -> bool:
        extra = {str(x) for x in _added(c)} - DEFAULT_CAPABILITIES
        added.update(extra)
        return bool(extra)
    names = _names(spec, bad)
    if not names:
        return None
    return "non-default capabilities", (f"{_who(names)} must not include "
                                        f"{join_quote(sorted(added))} in "
                                        "securityContext.capabilities.add")


def _added(c: Obj) -> list[object]:
    caps = _sc(c).get("capabilities")
    return list(caps.get("add") or []) if isinstance(caps, dict) else []


# ---- restricted ---------------------------------------------------------------


def allow_privilege_escalation(spec: Obj) -> Violation | None:
    names = _names(spec, lambda c: _sc(c).get("allowPrivilegeEscalation") is not False)
    if not names:
        return None
    return "allowPrivilegeEscalation != false", (
        f"{_who(names)} must set securityContext.allowPrivilegeEscalation=false")


def capabilities_restricted(spec: Obj) -> Violation | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    for c in containers(spec):
        caps = _sc(c).get("capabilities")
        caps = caps if isinstance(caps, dict) else None
        if caps is None or "ALL" not in (caps.get("drop") or []):
            missing_drop.append(str(c.get("name")))
        extra = {str(x) for x in (caps or {}).get("add") or []} - {"NET_BIND_SERVICE"}
        if extra:
            adding.append(str(c.get("name")))
            forbidden.update(extra)
    details = []
    if missing_drop:
        details.append(f'{_who(missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_who(adding)} must not include {join_quote(sorted(forbidden))} in "
                       "securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def restricted_volumes(spec: Obj) -> Violation | None:
    names = sorted(str(v.get("name")) for v in spec.get("volumes") or []
                   if isinstance(v, dict) and not RESTRICTED_VOLUME_TYPES & v.keys())
    if not names:
        return None
    quoted = " ".join(f'"{n}"' for n in names)  # Go's %q of a []string
    return "restricted volume types", f"volumes [{quoted}] have restricted types"


def run_as_non_root(spec: Obj) -> Violation | None:
    pod_value = _sc(spec).get("runAsNonRoot")
    setters = ["pod"] if pod_value is False else []
    explicit = _names(spec, lambda c: _sc(c).get("runAsNonRoot") is False)
    if explicit:
        setters.append(_who(explicit))
    if setters:
        return "runAsNonRoot != true", (f"{' and '.join(setters)} must not set "
                                        "securityContext.runAsNonRoot=false")
    implicit = _names(spec, lambda c: _sc(c).get("runAsNonRoot") is None and pod_value is not True)
    if implicit:
        return "runAsNonRoot != true", (f"pod or {_who(implicit)} must set "
                                        "securityContext.runAsNonRoot=true")
    return None


def run_as_user(spec: Obj) -> Violation | None:
    setters = ["pod"] if _sc(spec).get("runAsUser") == 0 else []
    names = _names(spec, lambda c: _sc(c).get("runAsUser") == 0)
    if names:
        setters.append(_who(names))
    if not setters:
        return None
    return "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0"


def seccomp_restricted(spec: Obj) -> Violation | None:
    valid = ("RuntimeDefault", "Localhost")
    pod_type = _seccomp_type(spec)
    setters, values = [], set()
    if pod_type is not None and pod_type not in valid:
        setters.append("pod")
        values.add(pod_type)
    explicit, implicit = [], []
    for c in containers(spec):
        own = _seccomp_type(c)
        if own is not None and own not in valid:
            explicit.append(str(c.get("name")))
            values.add(own)
        elif own is None and pod_type not in valid:
            implicit.append(str(c.get("name")))
    if explicit:
        setters.append(_who(explicit))
    if setters:
        return "seccompProfile", (f"{' and '.join(setters)} must not set "
                                  f"securityContext.seccompProfile.type to "
                                  f"{join_quote(sorted(values))}")
    if implicit:
        return "seccompProfile", (f'pod or {_who(implicit)} must set securityContext.'
                                  'seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return None


BASELINE: list[Check] = [host_namespaces, host_path_volumes, host_ports, privileged,
                         proc_mount, sysctls, working_dir]
# Baseline checks that restricted replaces with stricter ones of its own.
BASELINE_ONLY: list[Check] = [capabilities_baseline, seccomp_baseline]
RESTRICTED: list[Check] = [allow_privilege_escalation, capabilities_restricted,
                           restricted_volumes, run_as_non_root, run_as_user, seccomp_restricted]

LEVELS = ("privileged", "baseline", "restricted")


def evaluate(level: str, spec: Obj) -> list[Violation]:
    """The violations of ``spec`` (a PodSpec) against a level, in Kubernetes' order."""
    if level == "privileged":
        return []
    checks = BASELINE + (BASELINE_ONLY if level == "baseline" else RESTRICTED)
    return [v for v in (check(spec) for check in checks) if v is not None]


def forbidden_detail(violations: list[Violation]) -> str:
    """'host namespaces (hostNetwork=true), privileged (container "c" must ...)'"""
    return ", ".join(f"{reason} ({detail})" if detail else reason
                     for reason, detail in violations)
