"""Allocs in the scheduler: placed exactly as the Pods they stand for.

Each Alloc enters the loop as its pod-shaped view (corral.api.alloc_view), keyed
"ns/Alloc.<name>", so the one queue, snapshot, ledger, filters, scores and
preemption handle both kinds and an Alloc is never double-booked against pods.
Only the writes differ by kind, and this module makes them:

    Alloc informer (pending: spec.nodeName=)  ─► view ─► the loop's pending handlers
    Alloc informer (bound, not finished)      ─► view ─► the loop's bound handlers
    bind ─► allocs/{name}/binding     evict ─► DELETE alloc (its owner takes its work back)
    unschedulable ─► status condition Scheduled=False
"""

from __future__ import annotations

from collections.abc import Callable

from corral.api.alloc_view import ALLOC_PREFIX, alloc_name, is_alloc_key, pod_view
from corral.client.http import Client
from corral.client.informer import Informer, key_of
from corral.objects import Obj, meta, spec

ALLOC = "Alloc"
SCHEDULED = "Scheduled"  # the Alloc's condition; a Pod's is PodScheduled

Handler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]


def view_key(alloc: Obj) -> str:
    return f"{meta(alloc).get('namespace') or ''}/{ALLOC_PREFIX}{meta(alloc).get('name') or ''}"


def real_key(key: str) -> str:
    namespace, _, name = key.partition("/")
    return f"{namespace}/{alloc_name(name)}"


class AllocSource:
    """The two Alloc informers of the scheduler, read through pod views."""

    def __init__(self, client: Client, bound_selector: str) -> None:
        self.pending = Informer(client, ALLOC, field_selector="spec.nodeName=")
        self.bound = Informer(client, ALLOC, field_selector=bound_selector)
        self.bound.add_index("node", lambda a: [spec(a).get("nodeName") or ""])

    @property
    def informers(self) -> tuple[Informer, Informer]:
        return self.pending, self.bound

    def connect(self, pending: tuple[Handler, UpdateHandler, Handler],
                bound: tuple[Handler, UpdateHandler, Handler]) -> None:
        """Route Alloc events, as pod views, to the loop's pod handlers."""
        for informer, (added, updated, deleted) in ((self.pending, pending),
                                                    (self.bound, bound)):
            informer.add_handler(_viewed(added), _viewed2(updated), _viewed(deleted))

    def pending_view(self, key: str) -> Obj | None:
        return self._view(self.pending, key)

    def bound_view(self, key: str) -> Obj | None:
        return self._view(self.bound, key)

    def bound_on(self, node: str) -> list[Obj]:
        return [pod_view(a) for a in self.bound.by_index("node", node)]

    def original(self, view: Obj) -> Obj:
        """The Alloc itself (for Events about it), or the view if it is gone."""
        key = real_key(key_of(view))
        return (self.pending.get_by_key(key) or self.bound.get_by_key(key)
                or {**view, "kind": ALLOC, "apiVersion": "corral.dev/v1"})

    def _view(self, informer: Informer, key: str) -> Obj | None:
        alloc = informer.get_by_key(real_key(key)) if is_alloc_key(key) else None
        return pod_view(alloc) if alloc is not None else None

    @staticmethod
    async def bind(client: Client, namespace: str, view_name: str, node: str) -> None:
        await client.bind(alloc_name(view_name), namespace, node, kind=ALLOC)

    @staticmethod
    async def delete(client: Client, key: str) -> None:
        namespace, _, name = real_key(key).partition("/")
        await client.delete(ALLOC, name, namespace)


def _viewed(handler: Handler) -> Handler:
    return lambda alloc: handler(pod_view(alloc))


def _viewed2(handler: UpdateHandler) -> UpdateHandler:
    return lambda old, new: handler(pod_view(old), pod_view(new))
