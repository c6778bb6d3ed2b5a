"""Admission plugins: they see every create/update after validation and defaults,
before the write, and may change the object or refuse it (``APIError``).

    request ─► validate + defaults ─► pod security ─► priority ─► quota ─► store
                                      (the namespace's  (resolves    (charges the namespace's
                                       levels: refuse,   spec.priority) quotas; needs the priority
                                       warn, audit)                 class for PriorityClass scopes)

Pod security goes first: a pod it refuses must not have been charged to a quota.
"""

from __future__ import annotations

from corral.api.admission.pod_security import PodSecurityAdmission
from corral.api.admission.priority import PriorityAdmission
from corral.api.admission.quota import QuotaAdmission
from corral.api.registry import Admission, Registry

__all__ = ["PodSecurityAdmission", "PriorityAdmission", "QuotaAdmission", "default_plugins"]


def default_plugins(registry: Registry) -> list[Admission]:
    """The plugins the API server runs, in order."""
    return [PodSecurityAdmission(registry), PriorityAdmission(registry),
            QuotaAdmission(registry)]
