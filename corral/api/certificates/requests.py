"""What a CertificateSigningRequest may ask for, as Kubernetes' validation and its
built-in signers' rules (pkg/apis/certificates, pkg/controller/certificates).

    kubernetes.io/kube-apiserver-client-kubelet   a node's client certificate:
        CN system:node:<name>, O exactly [system:nodes], no SANs,
        usages ⊆ {digital signature, key encipherment, client auth} with client auth
    kubernetes.io/kubelet-serving                 a node's serving certificate:
        the same subject, DNS/IP SANs only (at least one), usages with server auth
    kubernetes.io/kube-apiserver-client           any client certificate (an
        operator approves it), usages with client auth
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509
from cryptography.x509.oid import NameOID

from corral.api.field_errors import FieldErrors
from corral.api.kinds.certificates import CertificateSigningRequest

KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
SIGNED_HERE = (KUBELET_CLIENT, KUBELET_SERVING, APISERVER_CLIENT)
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
MIN_EXPIRATION_SECONDS = 600
KNOWN_USAGES = ("signing", "digital signature", "content commitment", "key encipherment",
                "key agreement", "data encipherment", "cert sign", "crl sign",
                "encipher only", "decipher only", "any", "server auth", "client auth",
                "code signing", "email protection", "s/mime", "ipsec end system",
                "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
                "microsoft sgc", "netscape sgc")
_NODE_CLIENT_USAGES = {"digital signature", "key encipherment", "client auth"}
_NODE_SERVING_USAGES = {"digital signature", "key encipherment", "server auth"}
_SIGNER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9._~%!$&'()*+,;=:@-]+"
                          r"(/[A-Za-z0-9._~%!$&'()*+,;=:@-]+)*$")


def parse_request(encoded: str) -> x509.CertificateSigningRequest:
    """spec.request (base64 of a PEM CERTIFICATE REQUEST) → the request; ValueError
    saying what is wrong when it is not one, or its signature does not hold."""
    try:
        pem = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 of a PEM-encoded certificate request") from None
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        request = x509.load_pem_x509_csr(pem)
    except ValueError as err:
        raise ValueError(f"not a certificate request: {err}") from None
    if not request.is_signature_valid:
        raise ValueError("the request's signature does not verify against its public key")
    return request


def common_name(request: x509.CertificateSigningRequest) -> str:
    names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def organizations(request: x509.CertificateSigningRequest) -> list[str]:
    return [str(a.value) for a in
            request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def _sans(request: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def dns_names(request: x509.CertificateSigningRequest) -> list[str]:
    sans = _sans(request)
    return list(sans.get_values_for_type(x509.DNSName)) if sans is not None else []


def node_of(request: x509.CertificateSigningRequest) -> str | None:
    """The node a request names (CN system:node:<name>, O [system:nodes]), or None."""
    cn = common_name(request)
    if organizations(request) != [NODES_GROUP] or not cn.startswith(NODE_PREFIX):
        return None
    return cn[len(NODE_PREFIX):] or None


def signer_problem(signer: str, request: x509.CertificateSigningRequest,
                   usages: list[str]) -> str | None:
    """Why this signer will not sign this request, or None."""
    wanted = set(usages)
    if signer == APISERVER_CLIENT:
        return None if "client auth" in wanted else 'usages must include "client auth"'
    if signer not in (KUBELET_CLIENT, KUBELET_SERVING):
        return None
    if node_of(request) is None:
        return (f'subject must be CN "{NODE_PREFIX}<node name>" with O exactly '
                f'["{NODES_GROUP}"] for signer {signer}')
    sans = _sans(request)
    if signer == KUBELET_CLIENT:
        if sans is not None and len(list(sans)):
            return f"subject alternative names are not allowed for signer {signer}"
        if "client auth" not in wanted or not wanted <= _NODE_CLIENT_USAGES:
            return f"usages must include \"client auth\" and be within {sorted(_NODE_CLIENT_USAGES)}"
        return None
    names = list(sans) if sans is not None else []
    if not names or any(not isinstance(n, (x509.DNSName, x509.IPAddress)) for n in names):
        return f"signer {signer} needs DNS or IP subject alternative names, and only those"
    if "server auth" not in wanted or not wanted <= _NODE_SERVING_USAGES:
        return f"usages must include \"server auth\" and be within {sorted(_NODE_SERVING_USAGES)}"
    return None


def validate_csr(csr: CertificateSigningRequest, old: CertificateSigningRequest | None,
                 errs: FieldErrors) -> None:
    spec = csr.spec
    if old is not None:
        if spec.model_dump(by_alias=True) != old.spec.model_dump(by_alias=True):
            errs.invalid("spec", "{...}", "field is immutable")
        _validate_conditions(csr, old, errs)
        return
    if not spec.signer_name:
        errs.required("spec.signerName")
    elif not _SIGNER_NAME.match(spec.signer_name):
        errs.invalid("spec.signerName", spec.signer_name,
                     "must be a fully qualified domain and path of the form 'example.com/signer-name'")
    if spec.expiration_seconds is not None and spec.expiration_seconds < MIN_EXPIRATION_SECONDS:
        errs.invalid("spec.expirationSeconds", spec.expiration_seconds,
                     f"may not specify a duration less than {MIN_EXPIRATION_SECONDS} seconds")
    usages = spec.usages or []
    if not usages:
        errs.required("spec.usages")
    for i, usage in enumerate(usages):
        errs.one_of(f"spec.usages[{i}]", usage, KNOWN_USAGES)
        if usage in usages[:i]:
            errs.duplicate(f"spec.usages[{i}]", usage)
    if not spec.request:
        errs.required("spec.request")
        return
    try:
        request = parse_request(spec.request)
    except ValueError as err:
        errs.invalid("spec.request", "<certificate request>", str(err))
        return
    problem = signer_problem(spec.signer_name, request, usages)
    if problem:
        errs.invalid("spec.request", "<certificate request>", problem)
    _validate_conditions(csr, None, errs)


def _validate_conditions(csr: CertificateSigningRequest, old: CertificateSigningRequest | None,
                         errs: FieldErrors) -> None:
    conditions = (csr.status.conditions if csr.status else None) or []
    types = [c.type for c in conditions]
    for i, cond in enumerate(conditions):
        path = f"status.conditions[{i}]"
        errs.one_of(f"{path}.type", cond.type, ("Approved", "Denied", "Failed"))
        errs.one_of(f"{path}.status", cond.status, ("True", "False", "Unknown"))
        if cond.type in types[:i]:
            errs.duplicate(f"{path}.type", cond.type)
    if "Approved" in types and "Denied" in types:
        errs.invalid("status.conditions", "Approved, Denied",
                     "Approved and Denied conditions are mutually exclusive")
    previous = {c.type for c in ((old.status.conditions if old and old.status else None) or [])}
    for kept in ("Approved", "Denied"):
        if kept in previous and kept not in types:
            errs.forbidden("status.conditions", f"updates may not remove a condition of "
                           f"type {kept!r}")
    certificate = csr.status.certificate if csr.status else None
    if certificate and "Approved" not in types:
        errs.forbidden("status.certificate", "the certificate may only be set once the "
                       "request is approved")
