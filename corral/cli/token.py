"""`corral token create|list|revoke`: bearer tokens for people and machines,
issued on the master's machine (they live hashed in DATA_DIR/tokens.hashed,
which the master re-reads on change; see corral/api/token_store.py).

    $ corral token create --user jane --group dev --ttl 24h
    k3x9qa.0f6c...                       (shown once; only its hash is kept)
    $ corral token list
    ID      USER   GROUPS  EXPIRES               CREATED
    k3x9qa  jane   dev     2026-12-04T10:00:00Z  2026-12-03T10:00:00Z
    $ corral token revoke k3x9qa
    $ corral token create --bootstrap --ttl 30m     (for `corral agent
    7f2k0c.91ab...                                  --bootstrap-kubeconfig`: it asks
                                                    for the node's own certificate)

What a token may do is RBAC's business: bind its user or groups to a role.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from corral.api.auth import User
from corral.api.token_store import (
    BOOTSTRAP_TTL,
    TOKENS_FILE,
    IssuedToken,
    create_token,
    read_tokens,
    revoke_token,
)
from corral.objects import rfc3339

_TTL = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(value: str) -> dt.timedelta:
    match = _TTL.match(value)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"--ttl wants a duration like 30m, 24h or 7d, "
                                         f"got {value!r}")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _create(args: argparse.Namespace) -> int:
    if args.bootstrap:
        if args.user or args.group:
            print("corral token create: --bootstrap names its own user and group "
                  "(system:bootstrap:<id>, system:bootstrappers)", file=sys.stderr)
            return 2
        token, _ = create_token(args.data_dir, None, args.ttl or BOOTSTRAP_TTL)
        print(token)
        return 0
    if not args.user:
        print("corral token create: --user is required (or --bootstrap)", file=sys.stderr)
        return 2
    if not args.user.strip() or any(c in args.user for c in ",\n\""):
        print(f"corral token create: --user {args.user!r} is not a user name", file=sys.stderr)
        return 2
    user = User(args.user, args.uid or args.user, tuple(dict.fromkeys(args.group)))
    token, _ = create_token(args.data_dir, user, args.ttl)
    print(token)
    return 0


def _expires(token: IssuedToken, now: dt.datetime) -> str:
    if token.expires is None:
        return "<never>"
    return f"{rfc3339(token.expires)}{' (expired)' if token.expired(now) else ''}"


def _list(args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC)
    rows = [("ID", "USER", "GROUPS", "EXPIRES", "CREATED")]
    for t in read_tokens(args.data_dir / TOKENS_FILE):
        rows.append((t.id, t.user.name, ",".join(t.user.groups) or "<none>",
                     _expires(t, now), rfc3339(t.created)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _revoke(args: argparse.Namespace) -> int:
    if revoke_token(args.data_dir, args.id):
        print(f"token {args.id.partition('.')[0]} revoked")
        return 0
    print(f"corral token revoke: no token with id {args.id!r}", file=sys.stderr)
    return 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("token", help="create, list or revoke bearer tokens (on the master)")
    verbs = p.add_subparsers(dest="token_command", metavar="VERB", required=True)
    for name, run, text in (("create", _create, "issue a token for a user"),
                            ("list", _list, "list issued tokens (never their secrets)"),
                            ("revoke", _revoke, "revoke a token by its id")):
        v = verbs.add_parser(name, help=text)
        v.add_argument("--data-dir", type=Path, default=Path(".corral"),
                       help="the master's data dir (default ./.corral)")
        v.set_defaults(run=run)
        if name == "create":
            v.add_argument("--user", default="", help="the user the token authenticates as")
            v.add_argument("--bootstrap", action="store_true",
                           help="a bootstrap token (user system:bootstrap:<id>, group "
                                "system:bootstrappers) for a new agent's TLS bootstrap; "
                                "default --ttl 1h")
            v.add_argument("--uid", default="", help="the user's uid (default: the name)")
            v.add_argument("--group", action="append", default=[],
                           help="a group of the user (repeat for more)")
            v.add_argument("--ttl", type=parse_ttl, default=None,
                           help="lifetime, e.g. 30m, 24h, 7d (default: until revoked)")
        elif name == "revoke":
            v.add_argument("id", help="the token's id (the part before the dot), or the "
                                      "whole token")
