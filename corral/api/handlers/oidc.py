"""ServiceAccount issuer discovery: the OpenID Connect documents kube-apiserver
serves, so a system outside the cluster (a secrets store, a cloud's workload
identity) can check a ServiceAccount token's signature without calling the API:

    GET /.well-known/openid-configuration  ─► issuer (the tokens' `iss`), jwks_uri,
                                              RS256, public subjects, id_token
    GET /openid/v1/jwks                    ─► the JWK set: the public half of
                                              pki/sa.key, with the `kid` tokens carry

Both are read with `get` on their non-resource URLs; the ClusterRole
system:service-account-issuer-discovery grants it to every ServiceAccount
(rbac_policy.py), as Kubernetes does. jwks_uri is this master's external URL
(the one its kubeconfig names) under /openid/v1/jwks, as kube-apiserver derives it
when --service-account-jwks-uri is not given.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from corral.api.errors import MethodNotAllowed
from corral.api.sa_tokens import ISSUER, TokenSigner

CONFIGURATION_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
# kube-apiserver's: clients may keep both documents an hour
CACHE_CONTROL = "public, max-age=3600"


class IssuerDiscovery:
    def __init__(self, signer: TokenSigner, external_url: str) -> None:
        self._configuration = json.dumps({
            "issuer": ISSUER,
            "jwks_uri": external_url.rstrip("/") + JWKS_PATH,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }).encode()
        self._jwks = json.dumps({"keys": [signer.jwk()]}).encode()

    async def configuration(self, request: Request) -> Response:
        return self._answer(request, self._configuration, "application/json")

    async def jwks(self, request: Request) -> Response:
        return self._answer(request, self._jwks, "application/jwk-set+json")

    @staticmethod
    def _answer(request: Request, body: bytes, media_type: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{request.url.path} answers GET only")
        return Response(body, media_type=media_type,
                        headers={"Cache-Control": CACHE_CONTROL})
