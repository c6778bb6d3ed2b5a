"""`corral top nodes|pods`: CPU and memory in use, read from metrics.k8s.io (which
the master serves from the agents' /stats/summary) as `kubectl top` reads it, so
both show the same rows: a node whose agent is away and a pod with no running
container are left out. Printed as kubectl top prints them:

    NAME     CPU(cores)   CPU(%)   MEMORY(bytes)   MEMORY(%)
    node-1   250m         12%      512Mi           6%
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Any

from corral.api.quantity import bytes_value, cpu_millis, milli_value, parse_quantity
from corral.cli.output import Columns
from corral.cli.verb import UsageError, add_client_flags, namespace_of, run_verb
from corral.client.http import Client
from corral.objects import Obj, meta, status

METRICS = "/apis/metrics.k8s.io/v1beta1"


async def _metrics(client: Client, path: str) -> list[Obj]:
    items = (await client.raw("GET", f"{METRICS}{path}")).json().get("items")
    return items if isinstance(items, list) else []


def _millicores(quantities: list[Any]) -> int:
    # as kubectl top: the sum's MilliValue, rounded up
    return milli_value(sum((parse_quantity(q or 0) for q in quantities), Decimal(0)))


def _mebibytes(quantities: list[Any]) -> int:
    return bytes_value(sum((parse_quantity(q or 0) for q in quantities), Decimal(0))) \
        // (1024 * 1024)


def _percent(used: float, total: float) -> str:
    return f"{round(100 * used / total)}%" if total else "<unknown>"


async def top_nodes(client: Client) -> list[list[str]]:
    used = {meta(m)["name"]: m.get("usage") or {} for m in await _metrics(client, "/nodes")}
    rows = []
    for node in (await client.list_all("Node")).items:
        name = meta(node)["name"]
        if name not in used:
            continue
        alloc = status(node).get("allocatable") or {}
        cpu, mem = _millicores([used[name].get("cpu")]), _mebibytes([used[name].get("memory")])
        cpu_total = cpu_millis(alloc["cpu"]) if "cpu" in alloc else 0
        mem_total = bytes_value(alloc["memory"]) // (1024 * 1024) if "memory" in alloc else 0
        rows.append([name, f"{cpu}m", _percent(cpu, cpu_total),
                     f"{mem}Mi", _percent(mem, mem_total)])
    return rows


async def top_pods(client: Client, namespace: str | None) -> list[list[str]]:
    path = "/pods" if namespace is None else f"/namespaces/{namespace}/pods"
    rows = []
    for pod in await _metrics(client, path):
        usages = [c.get("usage") or {} for c in pod.get("containers") or []]
        cpu = _millicores([u.get("cpu") for u in usages])
        mem = _mebibytes([u.get("memory") for u in usages])
        prefix = [meta(pod)["namespace"]] if namespace is None else []
        rows.append([*prefix, meta(pod)["name"], f"{cpu}m", f"{mem}Mi"])
    return sorted(rows)


async def _top(client: Client, args: argparse.Namespace) -> int:
    if args.what in ("nodes", "node", "no"):
        headers = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
        rows = await top_nodes(client)
    elif args.what in ("pods", "pod", "po"):
        ns = None if args.all_namespaces else namespace_of(args)
        headers = (["NAMESPACE"] if ns is None else []) + ["NAME", "CPU(cores)",
                                                          "MEMORY(bytes)"]
        rows = await top_pods(client, ns)
    else:
        raise UsageError(f'unknown resource "{args.what}": top knows nodes and pods')
    if not rows:
        print("error: metrics not available yet" if args.what.startswith("n")
              else "No resources found")
        return 1 if args.what.startswith("n") else 0
    columns = Columns(headers)
    columns.headers = headers  # kubectl top keeps "CPU(cores)" in mixed case
    print(columns.render(rows))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("top", help="CPU and memory in use by nodes or pods")
    p.add_argument("what", choices=["nodes", "node", "no", "pods", "pod", "po"])
    add_client_flags(p, all_namespaces=True)
    p.set_defaults(run=lambda args: run_verb(args, _top))
