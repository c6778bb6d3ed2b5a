"""A container's environment, as the kubelet builds it, and `$(VAR)` expansion.

    {SVC}_SERVICE_HOST…     Services of the pod's namespace, CORRAL_DNS and
                            CORRAL_RESOLV_CONF (from the node, when the getter is a
                            the node's Services; overridden by everything below)
    PORT / PORT_<NAME>      the host ports the agent allocated (first, so user
                            env can refer to them as $(PORT))
    HOSTNAME                the pod's name
    envFrom                 every key of a ConfigMap / Secret (with prefix)
    env                     value (with $(VAR) of earlier entries expanded),
                            fieldRef (downward API), configMapKeyRef, secretKeyRef

Then command and args are expanded against the finished environment. Kubernetes'
rules: ``$(VAR)`` is replaced when VAR is defined, left as written when not;
``$$`` is a literal ``$`` (so ``$$(VAR)`` gives ``$(VAR)``).

A reference to a ConfigMap, Secret or key that does not exist and is not
optional raises EnvError: the container waits with reason
CreateContainerConfigError until it appears.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable

from corral.api.errors import NotFound
from corral.objects import Obj, meta

# (kind "ConfigMap"|"Secret", namespace, name) → the object, NotFound if absent
ObjectGetter = Callable[[str, str, str], Awaitable[Obj]]
# pod → what every container of it learns from the node (Service env vars, DNS)
PodEnv = Callable[[Obj], dict[str, str]]

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")
_BRACKETED = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """A referenced ConfigMap, Secret or key is missing (CreateContainerConfigError);
    retrying helps once someone creates it."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of one string."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REFERENCE.sub(replace, text)


def field_ref(pod: Obj, path: str) -> str:
    """The downward API: a pod field by its fieldPath."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"), "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(ip.get("ip", "") for ip in status.get("podIPs") or []),
        "status.hostIPs": ",".join(ip.get("ip", "") for ip in status.get("hostIPs") or []),
    }
    if path in simple:
        return str(simple[path] or "")
    bracketed = _BRACKETED.match(path)
    if bracketed:
        return str((meta.get(bracketed.group(1)) or {}).get(bracketed.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise EnvError(f"unsupported fieldRef fieldPath {path!r}")


def _data(kind: str, obj: Obj) -> dict[str, str]:
    if kind == "Secret":
        return {k: base64.b64decode(v).decode("utf-8", "replace")
                for k, v in (obj.get("data") or {}).items()}
    data = dict(obj.get("data") or {})
    data.update({k: base64.b64decode(v).decode("utf-8", "replace")
                 for k, v in (obj.get("binaryData") or {}).items()})
    return data


class EnvBuilder:
    """Builds the env of one container of one pod; ConfigMaps and Secrets are
    fetched through ``get`` once per build."""

    def __init__(self, pod: Obj, get: ObjectGetter,
                 node_env: dict[str, str] | None = None) -> None:
        self.pod = pod
        self.node_env = node_env or {}
        self.namespace = str(meta(pod).get("namespace") or "default")
        self.get = get
        self._fetched: dict[tuple[str, str], dict[str, str] | None] = {}

    async def _source(self, kind: str, name: str, optional: bool) -> dict[str, str] | None:
        key = (kind, name)
        if key not in self._fetched:
            try:
                self._fetched[key] = _data(kind, await self.get(kind, self.namespace, name))
            except NotFound:
                self._fetched[key] = None
        data = self._fetched[key]
        if data is None and not optional:
            raise EnvError(f'{kind.lower()} "{name}" not found')
        return data

    async def build(self, container: Obj, base: dict[str, str]) -> dict[str, str]:
        env = {**self.node_env, **base}
        for source in container.get("envFrom") or []:
            env.update(await self._env_from(source))
        for var in container.get("env") or []:
            value = await self._value(var, env)
            if value is not None:
                env[var["name"]] = value
        return env

    async def _env_from(self, source: Obj) -> dict[str, str]:
        prefix = source.get("prefix") or ""
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = source.get(key)
            if ref:
                data = await self._source(kind, ref.get("name", ""), bool(ref.get("optional")))
                return {prefix + k: v for k, v in (data or {}).items()}
        return {}

    async def _value(self, var: Obj, env: dict[str, str]) -> str | None:
        source = var.get("valueFrom")
        if not source:
            return expand(str(var.get("value") or ""), env)
        if source.get("fieldRef"):
            return field_ref(self.pod, source["fieldRef"].get("fieldPath", ""))
        for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = source.get(key)
            if ref:
                return await self._key(kind, ref)
        return None  # resourceFieldRef and others: not offered by this runtime

    async def _key(self, kind: str, ref: Obj) -> str | None:
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        data = await self._source(kind, name, optional)
        if data is None:
            return None
        if key not in data:
            if optional:
                return None
            raise EnvError(f'couldn\'t find key {key} in {kind} {self.namespace}/{name}')
        return data[key]


def command_line(container: Obj, env: dict[str, str]) -> list[str]:
    """command + args with $(VAR) expanded (no image: command is required in
    practice; a container with args only runs its args)."""
    parts = [*(container.get("command") or []), *(container.get("args") or [])]
    return [expand(str(p), env) for p in parts]
