"""The dashboard's session cookie, as one more way to present a bearer token.

The web UI (corral/ui/) keeps the token a user logged in with in a cookie the
page's scripts cannot read (HttpOnly), sent only over TLS (Secure) and only to
this origin's own pages (SameSite=Strict). Its scripts call the ordinary API
paths; the authenticator takes the token from the cookie when there is no
Authorization header, so every request meets the same authentication and
authorization as kubectl's.

A cookie is sent by the browser on its own, so accepting one opens the door
to cross-site request forgery. It is accepted only when the request also
carries the header ``X-Corral-Csrf: 1``: a page of another origin cannot add a
custom header without a CORS preflight, which this server never approves.
Where the browser says where a request comes from (``Sec-Fetch-Site``), it
must be ``same-origin`` (a page on another port of the same host is
"same-site", and SameSite alone would let its requests carry the cookie).
Websocket upgrades never use the cookie.

The cookie's name carries the cluster's identity (its CA's fingerprint):
browsers keep cookies per host, not per port, so two clusters on 127.0.0.1
must not overwrite each other's — and a cookie from another cluster is simply
not this cluster's cookie (nor would its token be accepted here).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from http.cookies import SimpleCookie

from starlette.types import Scope

CSRF_HEADER = b"x-corral-csrf"
COOKIE_PREFIX = "corral-session-"
# A browser session lasts at most this long; log in again after.
MAX_AGE_SECONDS = 12 * 3600


class SessionCookie:
    def __init__(self, cluster_id: str) -> None:
        self.name = COOKIE_PREFIX + cluster_id

    @classmethod
    def for_ca(cls, ca_pem: bytes) -> SessionCookie:
        return cls(hashlib.sha256(ca_pem).hexdigest()[:16])

    def token(self, scope: Scope) -> str | None:
        """The token in this cluster's cookie, if the request may use it."""
        if scope["type"] != "http":
            return None
        headers = {bytes(k).lower(): bytes(v) for k, v in scope.get("headers", [])}
        if headers.get(CSRF_HEADER) != b"1":
            return None
        fetch_site = headers.get(b"sec-fetch-site")
        if fetch_site is not None and fetch_site != b"same-origin":
            return None
        raw = headers.get(b"cookie")
        if raw is None:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw.decode("latin-1"))
        except Exception:  # noqa: BLE001 - a malformed Cookie header is no session
            return None
        morsel = jar.get(self.name)
        return _decode(morsel.value) if morsel is not None and morsel.value else None

    def set_header(self, token: str, secure: bool = True) -> str:
        """The Set-Cookie value that logs the browser in with ``token``."""
        flags = "; Secure" if secure else ""
        return (f"{self.name}={_encode(token)}; Path=/; HttpOnly{flags}; SameSite=Strict; "
                f"Max-Age={MAX_AGE_SECONDS}")

    def clear_header(self, secure: bool = True) -> str:
        flags = "; Secure" if secure else ""
        return f"{self.name}=; Path=/; HttpOnly{flags}; SameSite=Strict; Max-Age=0"


# Tokens in the token file may hold characters a cookie value cannot (";", ",",
# spaces): the cookie carries the token base64url-encoded.
def _encode(token: str) -> str:
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def _decode(value: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
