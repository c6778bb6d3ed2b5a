"""What controllers that keep one object in every namespace share (the default
ServiceAccount, kube-root-ca.crt): which namespaces still take new objects, and a
create that a namespace being deleted may refuse."""

from __future__ import annotations

from corral.api.errors import AlreadyExists, Forbidden
from corral.client.http import Client
from corral.client.informer import Informer
from corral.objects import Obj, is_deleting


def open_namespace(namespaces: Informer, name: str) -> Obj | None:
    """The namespace, unless it is gone or being deleted (nothing to keep there)."""
    namespace = namespaces.get_by_key(name)
    if namespace is None or is_deleting(namespace) or (
            (namespace.get("status") or {}).get("phase") == "Terminating"):
        return None
    return namespace


async def create_kept(client: Client, body: Obj, namespace: str) -> None:
    """Create ``body`` in ``namespace``: there already (the cache lagged) is success,
    and so is a refusal because the namespace is being deleted."""
    try:
        await client.create(body, namespace)
    except AlreadyExists:
        pass
    except Forbidden as err:
        if "being terminated" not in err.message:
            raise
