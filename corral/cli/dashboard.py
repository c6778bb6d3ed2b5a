"""`corral dashboard`: print the dashboard's address with a one-time login link
for the kubeconfig's token (the admin's, for the kubeconfig `corral up` wrote).

    $ corral dashboard
    dashboard:  https://127.0.0.1:6443/ui/
    login link: https://127.0.0.1:6443/ui/login?ticket=…   (once, within 5 minutes)

The link's secret is exchanged once for the session cookie; the token itself
never appears in a URL.
"""

from __future__ import annotations

import argparse

from corral.cli.verb import add_client_flags, run_verb
from corral.client.http import Client


def dashboard_url(server: str) -> str:
    return f"{server.rstrip('/')}/ui/"


async def _dashboard(client: Client, args: argparse.Namespace) -> int:
    response = await client.raw("POST", "/ui/tickets")
    ticket = response.json()
    print(f"dashboard:  {dashboard_url(client.server)}")
    print(f"login link: {client.server.rstrip('/')}{ticket['path']}")
    print(f"            (works once, within {ticket['expiresInSeconds']} s)")
    return 0


def _run(args: argparse.Namespace) -> int:
    return run_verb(args, _dashboard)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("dashboard", help="print the web dashboard's URL and a one-time "
                       "login link")
    add_client_flags(p)
    p.set_defaults(run=_run)
