"""Who last wrote a Node's addresses and agent port: the master calls a node's
agent only where the node's own credential said it listens.

    write of a Node (create, update, patch, status) by user U
        status.addresses or status.daemonEndpoints changed, or written again by
        the node itself ─► annotation corral.dev/endpoints-written-by = U's name
            (U not in system:nodes: "<name> (not in system:nodes)")
        else ─► the annotation as it was (a client cannot set it)
    node proxy, logs, exec ─► refused unless it reads system:node:<that node>

Without this, anyone allowed to write a Node (an operator's script, a buggy
controller) could point the master's authenticated calls at any address.
"""

from __future__ import annotations

from corral.api.auth import REQUESTER, User
from corral.api.resources import Resource
from corral.objects import Obj, ensure_meta, meta, status

WRITER_ANNOTATION = "corral.dev/endpoints-written-by"
NODES_GROUP = "system:nodes"
_ENDPOINT_FIELDS = ("addresses", "daemonEndpoints")


def writer_name(user: User | None) -> str:
    if user is None:
        return "<unknown>"
    if user.name.startswith("system:node:") and NODES_GROUP not in user.groups:
        return f"{user.name} (not in {NODES_GROUP})"
    return user.name


def endpoints_of(node: Obj | None) -> tuple[object, ...]:
    st = status(node or {})
    return tuple(st.get(f) for f in _ENDPOINT_FIELDS)


class EndpointWriterAdmission:
    """Records the writer of a Node's endpoints in WRITER_ANNOTATION."""

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        if res.kind != "Node":
            return
        annotations = dict(ensure_meta(obj).get("annotations") or {})
        before = (meta(old).get("annotations") or {}).get(WRITER_ANNOTATION) if old else None
        writer = writer_name(REQUESTER.get())
        # A change is claimed by whoever made it; the node re-stating its endpoints
        # claims them too (an agent that ran with another credential before).
        own = writer == f"system:node:{meta(obj).get('name', '')}"
        if any(endpoints_of(obj)) and (own or endpoints_of(obj) != endpoints_of(old)):
            annotations[WRITER_ANNOTATION] = writer
        elif before is not None:
            annotations[WRITER_ANNOTATION] = before
        else:
            annotations.pop(WRITER_ANNOTATION, None)
        if annotations:
            ensure_meta(obj)["annotations"] = annotations
        else:
            ensure_meta(obj).pop("annotations", None)


def written_by_node(node: Obj) -> bool:
    """Did the node's own credential write the endpoints it has now?"""
    name = str(meta(node).get("name") or "")
    writer = (meta(node).get("annotations") or {}).get(WRITER_ANNOTATION)
    return bool(name) and writer == f"system:node:{name}"
