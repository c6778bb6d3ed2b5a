"""Admission plugins: they see every create/update after validation and defaults,
before the write, and may change the object or refuse it (``APIError``).

    request ─► validate + defaults ─► service account ─► pod security ─► priority ─► quota ─► store
                                      (the pod's account (the namespace's  (resolves    (charges the
                                       must exist)        levels: refuse,   spec.priority) namespace's
                                                          warn, audit)                 quotas; needs the
                                                                                       priority class)

Kubernetes' order: a pod refused by any plugin must not have been charged to a quota.
"""

from __future__ import annotations

from corral.api.admission.pod_security import PodSecurityAdmission
from corral.api.admission.priority import PriorityAdmission
from corral.api.admission.quota import QuotaAdmission
from corral.api.admission.service_account import ServiceAccountAdmission
from corral.api.registry import Admission, Registry

__all__ = ["PodSecurityAdmission", "PriorityAdmission", "QuotaAdmission",
           "ServiceAccountAdmission", "default_plugins"]


def default_plugins(registry: Registry) -> list[Admission]:
    """The plugins the API server runs, in order."""
    return [ServiceAccountAdmission(registry), PodSecurityAdmission(registry),
            PriorityAdmission(registry), QuotaAdmission(registry)]
