"""`corral status`: the control plane at a glance — the masters (live or gone),
which one leads each leader-elected component, and the store: for etcd, each
member's health and which one is the raft leader.

    MASTER                     STATE    LEADS
    https://127.0.0.1:6444     live     scheduler, controller-manager
    https://127.0.0.1:6445     gone     (silent 14s)
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from corral.api.errors import NotFound
from corral.api.paths import STORE_STATUS_PATH
from corral.cli.verb import add_client_flags, run_verb
from corral.client.http import Client
from corral.client.leaderelection import master_identity
from corral.client.presence import DURATION_SECONDS, NAMESPACE, ROLE_LABEL, URL_ANNOTATION
from corral.objects import Obj, parse_time, spec

# Leader-elected components: (shown as, Lease in kube-system)
COMPONENTS = (("scheduler", "corral-scheduler"), ("controller-manager", "corral-controller-manager"))


def _silence(lease: Obj, now: datetime) -> float | None:
    renewed = parse_time(str(spec(lease).get("renewTime") or ""))
    return (now - renewed).total_seconds() if renewed else None


async def _leaders(client: Client) -> dict[str, str]:
    """component -> holder identity ("" when nobody holds it)."""
    out: dict[str, str] = {}
    for shown, lease in COMPONENTS:
        try:
            held = spec(await client.get("Lease", lease, NAMESPACE))
        except NotFound:
            held = {}
        out[shown] = str(held.get("holderIdentity") or "")
    return out


def master_rows(leases: list[Obj], leaders: dict[str, str], now: datetime) -> list[list[str]]:
    rows = []
    for lease in sorted(leases, key=lambda x: str(
            x["metadata"].get("annotations", {}).get(URL_ANNOTATION, ""))):
        url = str(lease["metadata"].get("annotations", {}).get(URL_ANNOTATION, "?"))
        silent = _silence(lease, now)
        live = silent is not None and silent <= DURATION_SECONDS
        leads = [c for c, holder in leaders.items() if holder == master_identity(url)]
        state = "live" if live else "gone"
        detail = ", ".join(leads) if live else f"(silent {silent:.0f}s)" if silent else ""
        rows.append([url, state, detail])
    return rows


def member_rows(store: dict[str, Any]) -> list[list[str]]:
    return [[str(m["name"]), str(m["endpoint"]),
             "healthy" if m["healthy"] else f"unhealthy: {m.get('error', '')}",
             "leader" if m["leader"] else ""] for m in store.get("members", [])]


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in [header, *rows])


async def _status(client: Client, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    leases = (await client.list("Lease", NAMESPACE, label_selector=f"{ROLE_LABEL}=master")).items
    leaders = await _leaders(client)
    rows = master_rows(leases, leaders, now)
    if not rows:  # a single master (on SQLite) keeps no presence Lease: it is the one here
        rows = [[client.current_server, "live", ", ".join(c for c, h in leaders.items() if h)]]
    print(table(["MASTER", "STATE", "LEADS"], rows))
    unheld = [c for c, holder in leaders.items() if not holder]
    if unheld:
        print(f"no leader now: {', '.join(unheld)}")
    store = (await client.raw("GET", STORE_STATUS_PATH)).json()
    where = store.get("endpoints") or store.get("path", "")
    print(f"\nSTORE {store['backend']} {where}  revision {store['revision']}  "
          f"compacted {store.get('compacted', 0)}")
    if store.get("members"):
        print(table(["MEMBER", "ENDPOINT", "HEALTH", "RAFT"], member_rows(store)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("status", help="masters, who leads each component, the store's members")
    add_client_flags(p)
    p.set_defaults(run=lambda args: run_verb(args, _status))
