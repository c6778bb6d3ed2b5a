"""ServiceAccount tokens: JWTs the master signs, as kube-apiserver issues them.

    data_dir/pki/sa.key   the signing key (RSA 2048, 0600), made on first start and
                          shared by the masters of one data dir (`corral up --masters`),
                          as --service-account-signing-key-file is

A token is an RS256 JWT whose claims are Kubernetes' (pkg/serviceaccount/claims.go):

    iss  https://kubernetes.default.svc.cluster.local     sub  system:serviceaccount:<ns>:<sa>
    aud  the audiences asked for (default: the issuer)    jti  a fresh uuid
    iat, nbf, exp                                          kubernetes.io: {namespace,
                                                             serviceaccount {name, uid},
                                                             pod {name, uid} | secret | node}

The header's ``kid`` is the key's id (base64url of the SHA-256 of its public key),
as kube-apiserver computes it. Verifying checks signature, issuer, audience and
times here; that the ServiceAccount (and the pod the token is bound to) still
exist with the uids named is the authenticator's part (sa_auth.py), since it
needs the store.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from corral.api.auth import write_private

ISSUER = "https://kubernetes.default.svc.cluster.local"
KEY_FILE = "sa.key"
CLAIMS = "kubernetes.io"
# Kubernetes' bounds on expirationSeconds: at least 10 minutes; the default is an
# hour; corral caps a token at 48 hours (kube-apiserver's cap is a flag).
MIN_EXPIRATION = 600
DEFAULT_EXPIRATION = 3600
MAX_EXPIRATION = 48 * 3600
# A token whose clock is a little ahead of the master's still counts.
LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class Binding:
    """What a token is bound to besides its ServiceAccount (a Pod, Secret or Node)."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class TokenClaims:
    namespace: str
    service_account: str
    service_account_uid: str
    audiences: tuple[str, ...]
    expires: dt.datetime
    issued: dt.datetime
    jti: str
    bound: Binding | None = None
    node: Binding | None = None  # the node of the pod a token is bound to

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def ensure_signing_key(pki_dir: Path) -> rsa.RSAPrivateKey:
    path = pki_dir / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            return key
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki_dir.mkdir(parents=True, exist_ok=True)
    write_private(path, new.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode())
    return new


def key_id(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


class TokenSigner:
    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        self._public = key.public_key()
        self.kid = key_id(self._public)

    def jwk(self) -> dict[str, Any]:
        """The public key as a JSON Web Key, for issuer discovery (handlers/oidc.py)."""
        key: dict[str, Any] = RSAAlgorithm.to_jwk(self._public, as_dict=True)
        return {"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
                "n": key["n"], "e": key["e"]}

    def issue(self, claims: TokenClaims) -> str:
        private: dict[str, Any] = {
            "namespace": claims.namespace,
            "serviceaccount": {"name": claims.service_account,
                               "uid": claims.service_account_uid},
        }
        for binding in (claims.bound, claims.node):
            if binding is not None:
                private[binding.kind.lower()] = {"name": binding.name, "uid": binding.uid}
        payload = {
            "iss": ISSUER, "aud": list(claims.audiences), "sub": claims.username,
            "jti": claims.jti, "iat": int(claims.issued.timestamp()),
            "nbf": int(claims.issued.timestamp()), "exp": int(claims.expires.timestamp()),
            CLAIMS: private,
        }
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str, audiences: tuple[str, ...] = (ISSUER,),
               now: dt.datetime | None = None) -> TokenClaims | None:
        """The claims of a token this master's key signed, still in its time and
        meant for one of ``audiences``; None for anything else."""
        try:
            payload = jwt.decode(token, self._public, algorithms=["RS256"], issuer=ISSUER,
                                 audience=list(audiences), leeway=LEEWAY_SECONDS,
                                 options={"require": ["exp", "iat", "sub", "iss", "aud"],
                                          "verify_exp": now is None, "verify_iat": False,
                                          "verify_nbf": now is None})
        except jwt.PyJWTError:
            return None
        claims = _claims(payload)
        if claims is None or (now is not None and now.timestamp() >= (
                claims.expires.timestamp() + LEEWAY_SECONDS)):
            return None
        return claims


def new_claims(namespace: str, sa: str, sa_uid: str, audiences: tuple[str, ...],
               seconds: int, bound: Binding | None, node: Binding | None,
               now: dt.datetime | None = None) -> TokenClaims:
    issued = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    return TokenClaims(namespace, sa, sa_uid, audiences or (ISSUER,),
                       issued + dt.timedelta(seconds=seconds), issued, str(uuid.uuid4()),
                       bound, node)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def _claims(payload: dict[str, Any]) -> TokenClaims | None:
    private = payload.get(CLAIMS)
    if not isinstance(private, dict):
        return None
    sa = private.get("serviceaccount") or {}
    namespace = private.get("namespace")
    if not isinstance(sa, dict) or not isinstance(namespace, str):
        return None
    if payload.get("sub") != f"system:serviceaccount:{namespace}:{sa.get('name')}":
        return None
    aud = payload.get("aud")
    audiences = tuple(aud) if isinstance(aud, list) else (str(aud),)
    bound = next((Binding(kind, str(ref.get("name") or ""), str(ref.get("uid") or ""))
                  for kind, ref in (("Pod", private.get("pod")),
                                    ("Secret", private.get("secret")))
                  if isinstance(ref, dict)), None)
    node_ref = private.get("node")
    node = (Binding("Node", str(node_ref.get("name") or ""), str(node_ref.get("uid") or ""))
            if isinstance(node_ref, dict) else None)
    if bound is None and node is not None:
        bound, node = node, None  # a token bound to the node itself
    return TokenClaims(namespace, str(sa.get("name") or ""), str(sa.get("uid") or ""),
                       audiences, dt.datetime.fromtimestamp(int(payload["exp"]), dt.UTC),
                       dt.datetime.fromtimestamp(int(payload["iat"]), dt.UTC),
                       str(payload.get("jti") or ""), bound, node)
