"""A pod's ServiceAccount token, as the kubelet projects it (the kube-api-access
volume): what `kubernetes.config.load_incluster_config()` reads.

    <pods dir>/<uid>/serviceaccount/    0755, files 0644 (the container's user reads them)
        token       a TokenRequest bound to the pod (expires in an hour; the agent
                    asks for a new one once 80 % of its life has passed, as the
                    kubelet does, and replaces the file atomically)
        ca.crt      the cluster CA the agent trusts the master by
        namespace   the pod's namespace

    container: /var/run/secrets/kubernetes.io/serviceaccount  ← a read-only bind
               mount of that directory in the container's own mount namespace
               (runtime/mounts.py), so the fixed path Kubernetes' clients read
               is the pod's own, and no other pod's

Whether a pod gets one: its spec's automountServiceAccountToken, else its
ServiceAccount's, else yes. A ServiceAccount that does not exist (yet) is a
CreateContainerConfigError, retried, as the kubelet's missing-volume wait.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from corral.api.errors import APIError, NotFound
from corral.client.clock import Clock, RealClock
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, name_of, namespace_of, parse_time, spec, status, uid_of

log = logging.getLogger(__name__)

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
DIR_NAME = "serviceaccount"
EXPIRATION_SECONDS = 3600
REFRESH_AT = 0.8  # of a token's life


class TokenError(ValueError):
    """The pod's token cannot be had (its ServiceAccount is missing, the master
    refused): the container waits with CreateContainerConfigError."""


def service_account_of(pod: Obj) -> str:
    s = spec(pod)
    return str(s.get("serviceAccountName") or s.get("serviceAccount") or "default")


def wants_token(pod: Obj, account: Obj | None) -> bool:
    own = spec(pod).get("automountServiceAccountToken")
    if own is not None:
        return bool(own)
    return (account or {}).get("automountServiceAccountToken") is not False


def needs_refresh(issued: dt.datetime, expires: dt.datetime, now: dt.datetime) -> bool:
    return now >= issued + (expires - issued) * REFRESH_AT


@dataclass
class _Held:
    issued: dt.datetime
    expires: dt.datetime


class ProjectedToken:
    """One pod's token directory; ``ensure`` before each container start and on
    every sync pass (cheap unless a refresh is due)."""

    def __init__(self, client: Client, pod_dir: Path, ca_pem: bytes | None,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.dir = pod_dir / DIR_NAME
        self.ca_pem = ca_pem
        self.clock = clock or RealClock()
        self._held: _Held | None = None
        self._wanted: bool | None = None  # decided once per pod

    @property
    def held(self) -> bool:
        return self._held is not None

    async def ensure(self, pod: Obj) -> Path | None:
        """The directory to mount, or None when the pod has no token."""
        if self._wanted is None:
            self._wanted = wants_token(pod, await self._account(pod))
        if not self._wanted:
            return None
        held = self._held
        if held is None or needs_refresh(held.issued, held.expires, self.clock.now()):
            try:
                await self._request(pod)
            except TokenError:
                if held is None or self.clock.now() >= held.expires:
                    raise
                log.warning("token refresh failed; the current one still holds pod=%s/%s",
                            namespace_of(pod), name_of(pod))
        return self.dir

    async def _account(self, pod: Obj) -> Obj | None:
        name = service_account_of(pod)
        try:
            return await self.client.get("ServiceAccount", name, namespace_of(pod))
        except NotFound:
            if spec(pod).get("automountServiceAccountToken") is False:
                return None
            raise TokenError(f'serviceaccount "{name}" not found') from None
        except (APIError, ServerUnreachable) as err:
            raise TokenError(f"cannot read serviceaccount {name!r}: {err}") from err

    async def _request(self, pod: Obj) -> None:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": EXPIRATION_SECONDS,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                            "name": name_of(pod), "uid": uid_of(pod)}}}
        try:
            answer = await self.client.create_token(service_account_of(pod),
                                                    namespace_of(pod), body)
        except (APIError, ServerUnreachable) as err:
            raise TokenError(f"cannot get a token for serviceaccount "
                             f"{service_account_of(pod)!r}: {err}") from err
        token = str(status(answer).get("token") or "")
        expires = parse_time(status(answer).get("expirationTimestamp"))
        if not token or expires is None:
            raise TokenError("the master answered a TokenRequest without a token")
        self._write(token, namespace_of(pod))
        self._held = _Held(self.clock.now(), expires)
        log.info("service account token written pod=%s/%s expires=%s", namespace_of(pod),
                 name_of(pod), status(answer).get("expirationTimestamp"))

    def _write(self, token: str, namespace: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        files = {"token": token.encode(), "namespace": namespace.encode()}
        if self.ca_pem:
            files["ca.crt"] = self.ca_pem
        for name, data in files.items():
            tmp = self.dir / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, self.dir / name)  # a reader sees the old file or the new

