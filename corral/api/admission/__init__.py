"""Admission plugins: they see every create/update after validation and defaults,
before the write, and may change the object or refuse it (``APIError``).

    request ─► validate + defaults ─► limit ranger ─► service account ─► pod security ─► priority ─► quota ─► store
                                      (LimitRanges:     (the pod's account (the namespace's  (resolves    (charges the
                                       default requests  must exist)        levels: refuse,   spec.priority) namespace's
                                       and limits, bound                    warn, audit)                 quotas; needs the
                                       them)                                                             priority class)

Kubernetes' order: a pod refused by any plugin must not have been charged to a
quota, and quota charges the requests LimitRanger defaulted.
"""

from __future__ import annotations

from corral.api.admission.limit_ranger import LimitRangerAdmission
from corral.api.admission.pod_security import PodSecurityAdmission
from corral.api.admission.priority import PriorityAdmission
from corral.api.admission.quota import QuotaAdmission
from corral.api.admission.service_account import ServiceAccountAdmission
from corral.api.registry import Admission, Registry

__all__ = ["LimitRangerAdmission", "PodSecurityAdmission", "PriorityAdmission", "QuotaAdmission",
           "ServiceAccountAdmission", "default_plugins"]


def default_plugins(registry: Registry) -> list[Admission]:
    """The plugins the API server runs, in order."""
    return [LimitRangerAdmission(registry), ServiceAccountAdmission(registry),
            PodSecurityAdmission(registry), PriorityAdmission(registry), QuotaAdmission(registry)]
