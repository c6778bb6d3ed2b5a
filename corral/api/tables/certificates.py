"""The table of certificates.k8s.io/v1 CertificateSigningRequests, with kubectl's
columns (`kubectl get csr`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from corral.api.tables.age import human_duration
from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, age_of, name_of

CSR_COLUMNS = (
    NAME,
    AGE,
    Column("SignerName", "The name of the signer the request is for."),
    Column("Requestor", "Who made the request."),
    Column("RequestedDuration", "How long the requester asked the certificate to be valid."),
    Column("Condition", "Approved, Denied, Failed and Issued, as they hold."),
)


def _condition(csr: Object) -> str:
    status = csr.get("status") or {}
    found = [str(c.get("type")) for c in status.get("conditions") or []
             if c.get("status", "True") == "True"]
    if status.get("certificate"):
        found.append("Issued")
    return ",".join(found) or "Pending"


def csr_cells(csr: Object, now: datetime) -> list[Cell]:
    spec = csr.get("spec") or {}
    seconds = spec.get("expirationSeconds")
    duration = human_duration(timedelta(seconds=int(seconds))) if seconds else "<none>"
    return [name_of(csr), age_of(csr, now), str(spec.get("signerName") or ""),
            str(spec.get("username") or ""), duration, _condition(csr)]


CSRS = Printer(CSR_COLUMNS, csr_cells)
