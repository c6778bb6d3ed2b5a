"""Tokens the operator issues (`corral token create|list|revoke`), stored hashed.

A token is ``<id>.<secret>`` (Kubernetes' bootstrap-token shape). The file
data_dir/tokens.hashed holds one line per token, never the secret itself:

    id,sha256(secret) hex,user,uid,"group1,group2",expires (RFC 3339 or empty),created

The master re-reads it when its mtime changes (as the token file), so a token
created or revoked by the CLI on the master's machine counts at once, without a
restart; an expired token no longer authenticates, and the next write drops it
(Kubernetes' tokencleaner deletes expired bootstrap tokens). Writers take an
exclusive lock on data_dir/.tokens.lock for their read-modify-write: two
`corral token create` at once both land.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import hashlib
import hmac
import io
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from corral.api.auth import User, write_private
from corral.objects import parse_time, rfc3339

TOKENS_FILE = "tokens.hashed"
LOCK_FILE = ".tokens.lock"
BOOTSTRAP_PREFIX = "system:bootstrap:"
BOOTSTRAPPERS = "system:bootstrappers"
BOOTSTRAP_TTL = dt.timedelta(hours=1)  # a bootstrap token is for joining nodes now
_ID = re.compile(r"^[a-z0-9]{6}$")


@dataclass(frozen=True)
class IssuedToken:
    id: str
    digest: str
    user: User
    expires: dt.datetime | None
    created: dt.datetime

    def expired(self, now: dt.datetime) -> bool:
        return self.expires is not None and now >= self.expires


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def read_tokens(path: Path) -> list[IssuedToken]:
    if not path.exists():
        return []
    out: list[IssuedToken] = []
    for row in csv.reader(io.StringIO(path.read_text())):
        if len(row) < 7 or not _ID.match(row[0]):
            continue  # not a line this module wrote: ignored rather than trusted
        groups = tuple(g for g in row[4].split(",") if g)
        out.append(IssuedToken(row[0], row[1], User(row[2], row[3], groups),
                               parse_time(row[5]) if row[5] else None,
                               parse_time(row[6]) or dt.datetime.fromtimestamp(0, dt.UTC)))
    return out


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _live(path: Path, now: dt.datetime) -> list[IssuedToken]:
    return [t for t in read_tokens(path) if not t.expired(now)]


def _write(path: Path, tokens: list[IssuedToken]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for t in tokens:
        writer.writerow([t.id, t.digest, t.user.name, t.user.uid, ",".join(t.user.groups),
                         rfc3339(t.expires) if t.expires else "", rfc3339(t.created)])
    write_private(path, out.getvalue())


def create_token(data_dir: Path, user: User | None, ttl: dt.timedelta | None = None, *,
                 now: dt.datetime | None = None) -> tuple[str, IssuedToken]:
    """The token (shown once) and its stored record. user None: a bootstrap token,
    user system:bootstrap:<id> in group system:bootstrappers, as Kubernetes names
    them (RBAC lets it ask for a node client certificate, nothing else)."""
    now = now or dt.datetime.now(dt.UTC)
    path = data_dir / TOKENS_FILE
    with _locked(data_dir):
        existing = _live(path, now)
        token_id = _new_id({t.id for t in read_tokens(path)})
        secret = secrets.token_hex(16)
        if user is None:
            user = User(f"{BOOTSTRAP_PREFIX}{token_id}", "", (BOOTSTRAPPERS,))
        issued = IssuedToken(token_id, _digest(secret), user, now + ttl if ttl else None,
                             now.replace(microsecond=0))
        _write(path, [*existing, issued])
    return f"{token_id}.{secret}", issued


def replace_token(data_dir: Path, user: User) -> str:
    """A new token for user, revoking any it had: a machine's one credential
    (an agent's, each time `corral up` starts it)."""
    path = data_dir / TOKENS_FILE
    with _locked(data_dir):
        kept = [t for t in read_tokens(path) if t.user.name != user.name]
        if path.exists():
            _write(path, kept)
    return create_token(data_dir, user)[0]


def _new_id(taken: set[str]) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(6))
        if candidate not in taken:
            return candidate


def revoke_token(data_dir: Path, token: str, now: dt.datetime | None = None) -> bool:
    """Revoke by id, or by the whole ``<id>.<secret>`` (as `kubeadm token delete`
    takes either); False if no such token (an expired one is already gone)."""
    token_id = token.partition(".")[0]
    path = data_dir / TOKENS_FILE
    with _locked(data_dir):
        existing = read_tokens(path)
        if not any(t.id == token_id for t in existing):
            return False
        _write(path, [t for t in _live(path, now or dt.datetime.now(dt.UTC))
                      if t.id != token_id])
    return True


class HashedTokens:
    """Authenticates ``<id>.<secret>`` against data_dir/tokens.hashed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_id: dict[str, IssuedToken] = {}
        self._mtime_ns: int | None = None

    def authenticate(self, token: str, now: dt.datetime | None = None) -> User | None:
        token_id, dot, secret = token.partition(".")
        if not dot:
            return None
        issued = self._current().get(token_id)
        if issued is None or issued.expired(now or dt.datetime.now(dt.UTC)):
            return None
        return issued.user if hmac.compare_digest(_digest(secret), issued.digest) else None

    def _current(self) -> dict[str, IssuedToken]:
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if mtime_ns != self._mtime_ns:
            self._by_id = {t.id: t for t in read_tokens(self.path)}
            self._mtime_ns = mtime_ns
        return self._by_id
