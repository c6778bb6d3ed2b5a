"""certificates.k8s.io/v1: CertificateSigningRequest, how a node (or anyone) asks
the cluster CA for a certificate: a PKCS#10 request in spec.request, approved
through the approval subresource, the signed certificate in status.certificate."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, KubeModel
from corral.api.kinds.meta import Condition, KubeObject


class CertificateSigningRequestSpec(KubeModel):
    request: str = ""  # base64 of the PEM-encoded PKCS#10 request
    signer_name: str = ""
    expiration_seconds: Int32 | None = None
    usages: list[str] | None = None
    # Who asked: set by the server from the requester, never taken from the body.
    username: str | None = None
    uid: str | None = None
    groups: list[str] | None = None
    extra: dict[str, list[str]] | None = None


class CertificateSigningRequestStatus(KubeModel):
    conditions: list[Condition] | None = None
    certificate: str | None = None  # base64 of the PEM certificate the signer issued


class CertificateSigningRequest(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("certificates.k8s.io/v1",)
    spec: CertificateSigningRequestSpec = Field(default_factory=CertificateSigningRequestSpec)
    status: CertificateSigningRequestStatus | None = None
