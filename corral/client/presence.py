"""Each master says it is alive: a Lease kube-system/corral-master-<id> renewed
every few seconds (kube-apiserver keeps the same kind of identity Lease), so
`corral status` can list the masters and tell the live ones from the gone."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from datetime import UTC, datetime

from corral.api.errors import APIError, Conflict, NotFound
from corral.client.http import Client, ServerUnreachable
from corral.client.leaderelection import master_identity
from corral.objects import Obj, rfc3339_micro, spec

log = logging.getLogger(__name__)

ROLE_LABEL = "corral.dev/role"
URL_ANNOTATION = "corral.dev/url"
NAMESPACE = "kube-system"
RENEW_SECONDS = 2.0
DURATION_SECONDS = 10  # a master silent this long is shown as gone


def lease_name(url: str) -> str:
    return "corral-master-" + hashlib.sha1(url.encode()).hexdigest()[:10]


async def announce(client: Client, url: str, stop: asyncio.Event) -> None:
    """Renew this master's presence Lease until ``stop``."""
    name = lease_name(url)
    written: Obj | None = None  # the Lease as our last renewal left it
    while not stop.is_set():
        try:
            written = await _renew(client, name, url, written)
        except (APIError, ServerUnreachable) as err:
            written = None
            log.info("presence lease not renewed lease=%s error=%r", name, err)
        try:
            await asyncio.wait_for(stop.wait(), RENEW_SECONDS)
        except TimeoutError:
            pass


async def _renew(client: Client, name: str, url: str, written: Obj | None) -> Obj:
    """Renew on top of what our last renewal wrote (a compare-and-swap on its
    resourceVersion, no read first); read it again only when someone else wrote
    it or it is gone."""
    now = rfc3339_micro(datetime.now(UTC))
    if written is not None:
        with contextlib.suppress(Conflict, NotFound):
            return await client.update(_renewed(written, url, now))
    try:
        lease = await client.get("Lease", name, NAMESPACE)
    except NotFound:
        return await client.create({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": NAMESPACE,
                         "labels": {ROLE_LABEL: "master"},
                         "annotations": {URL_ANNOTATION: url}},
            "spec": {"holderIdentity": master_identity(url),
                     "leaseDurationSeconds": DURATION_SECONDS,
                     "acquireTime": now, "renewTime": now}})
    return await client.update(_renewed(lease, url, now))


def _renewed(lease: Obj, url: str, now: str) -> Obj:
    return {**lease, "spec": {**spec(lease), "renewTime": now,
                              "holderIdentity": master_identity(url)}}
