"""`corral top nodes|pods`: CPU and memory in use, from the agents' /stats/summary
(read through the master's nodes/{name}/proxy), printed as kubectl top prints them:

    NAME     CPU(cores)   CPU(%)   MEMORY(bytes)   MEMORY(%)
    node-1   250m         12%      512Mi           6%
"""

from __future__ import annotations

import argparse
import asyncio

from corral.api.errors import APIError
from corral.api.quantity import bytes_value, cpu_millis
from corral.cli.output import Columns
from corral.cli.verb import UsageError, add_client_flags, namespace_of, run_verb
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, status


async def _summary(client: Client, node: str) -> Obj | None:
    try:
        response = await client.raw("GET", f"/api/v1/nodes/{node}/proxy/stats/summary")
    except (APIError, ServerUnreachable):
        return None  # a node whose agent is away: left out, as metrics-server does
    data = response.json()
    return data if isinstance(data, dict) else None


def _millicores(block: Obj) -> int:
    return int((block.get("cpu") or {}).get("usageNanoCores") or 0) // 1_000_000


def _mebibytes(block: Obj) -> int:
    return int((block.get("memory") or {}).get("workingSetBytes") or 0) // (1024 * 1024)


def _percent(used: float, total: float) -> str:
    return f"{round(100 * used / total)}%" if total else "<unknown>"


async def _summaries(client: Client) -> list[tuple[Obj, Obj]]:
    nodes = (await client.list_all("Node")).items
    found = await asyncio.gather(*(_summary(client, n["metadata"]["name"]) for n in nodes))
    return [(n, s) for n, s in zip(nodes, found, strict=True) if s is not None]


async def top_nodes(client: Client) -> list[list[str]]:
    rows = []
    for node, summary in await _summaries(client):
        alloc = status(node).get("allocatable") or {}
        cpu, mem = _millicores(summary["node"]), _mebibytes(summary["node"])
        cpu_total = cpu_millis(alloc["cpu"]) if "cpu" in alloc else 0
        mem_total = bytes_value(alloc["memory"]) // (1024 * 1024) if "memory" in alloc else 0
        rows.append([node["metadata"]["name"], f"{cpu}m", _percent(cpu, cpu_total),
                     f"{mem}Mi", _percent(mem, mem_total)])
    return rows


async def top_pods(client: Client, namespace: str | None) -> list[list[str]]:
    rows = []
    for _, summary in await _summaries(client):
        for pod in summary.get("pods") or []:
            ref = pod["podRef"]
            if namespace is None or ref["namespace"] == namespace:
                prefix = [ref["namespace"]] if namespace is None else []
                rows.append([*prefix, ref["name"], f"{_millicores(pod)}m",
                             f"{_mebibytes(pod)}Mi"])
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
