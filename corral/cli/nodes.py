"""`corral cordon|uncordon|drain NODE`, as kubectl does them.

    cordon    spec.unschedulable=true: the scheduler places nothing new there
    uncordon  spec.unschedulable removed
    drain     cordon, then evict every pod on the node (pods/eviction, which is a
              graceful delete), and wait until they are gone; pods that no
              controller owns would not come back, so they need --force; an
              eviction a PodDisruptionBudget refuses is retried every 5 s
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from corral.api.errors import NotFound, TooManyRequests
from corral.cli.verb import UsageError, add_client_flags, run_verb
from corral.client.http import Client
from corral.objects import Obj, meta, spec, status

EVICTION_RETRY = 5.0  # seconds, kubectl drain's wait after a disruption budget refuses


async def set_unschedulable(client: Client, node: str, value: bool) -> str:
    current = await client.get("Node", node)
    if bool(spec(current).get("unschedulable")) == value:
        return f"node/{node} already {'cordoned' if value else 'uncordoned'}"
    await client.patch("Node", node, {"spec": {"unschedulable": True if value else None}},
                       patch_type="strategic")
    return f"node/{node} {'cordoned' if value else 'uncordoned'}"


def _controlled(pod: Obj) -> bool:
    return any(ref.get("controller") for ref in meta(pod).get(
        "ownerReferences") or [])


async def _pods_on(client: Client, node: str) -> list[Obj]:
    page = await client.list_all("Pod", None, field_selector=f"spec.nodeName={node}")
    return [p for p in page.items if status(p).get("phase") not in ("Succeeded", "Failed")]


async def _evict(client: Client, pod: Obj, deadline: float) -> None:
    """Evict one pod; while a PodDisruptionBudget refuses (429), say so and try
    again every 5 s, as kubectl drain does, until the deadline."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    while True:
        try:
            await client.evict(name, namespace)
        except NotFound:
            return
        except TooManyRequests as err:
            if time.monotonic() + EVICTION_RETRY > deadline:
                raise UsageError(f'cannot evict pod {namespace}/{name}: {err.message}') from None
            print(f'error when evicting pods/"{name}" -n "{namespace}" (will retry after '
                  f'{EVICTION_RETRY:.0f}s): {err.message}', file=sys.stderr, flush=True)
            await asyncio.sleep(EVICTION_RETRY)
            continue
        print(f"evicting pod {namespace}/{name}", flush=True)
        return


async def drain(client: Client, node: str, *, force: bool, timeout: float) -> int:
    print(await set_unschedulable(client, node, True), flush=True)
    pods = await _pods_on(client, node)
    unmanaged = [p for p in pods if not _controlled(p)]
    if unmanaged and not force:
        names = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                          for p in unmanaged)
        raise UsageError(f"cannot delete pods that declare no controller (use --force to "
                         f"override): {names}")
    deadline = time.monotonic() + timeout
    await asyncio.gather(*(_evict(client, pod, deadline) for pod in pods))
    uids = {p["metadata"]["uid"] for p in pods}
    while uids and time.monotonic() < deadline:
        uids &= {p["metadata"]["uid"] for p in await _pods_on(client, node)}
        if uids:
            await asyncio.sleep(0.5)
    if uids:
        raise UsageError(f"drain did not complete within {timeout:.0f}s: "
                         f"{len(uids)} pod(s) still on node/{node}")
    print(f"node/{node} drained", flush=True)
    return 0


async def _cordon(client: Client, args: argparse.Namespace) -> int:
    for node in args.nodes:
        print(await set_unschedulable(client, node, args.command == "cordon"))
    return 0


async def _drain(client: Client, args: argparse.Namespace) -> int:
    for node in args.nodes:
        await drain(client, node, force=args.force, timeout=args.timeout)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for verb, help_text in (("cordon", "mark nodes unschedulable"),
                            ("uncordon", "mark nodes schedulable again")):
        p = sub.add_parser(verb, help=help_text)
        p.add_argument("nodes", nargs="+", metavar="NODE")
        add_client_flags(p)
        p.set_defaults(run=lambda args: run_verb(args, _cordon))
    p = sub.add_parser("drain", help="cordon nodes and evict their pods")
    p.add_argument("nodes", nargs="+", metavar="NODE")
    p.add_argument("--force", action="store_true",
                   help="also delete pods that no controller owns (they will not come back)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the pods")
    add_client_flags(p)
    p.set_defaults(run=lambda args: run_verb(args, _drain))
