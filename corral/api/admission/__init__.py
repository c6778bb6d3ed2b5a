"""Admission plugins: they see every create/update after validation and defaults,
before the write, and may change the object or refuse it (``APIError``).

    request ─► validate + defaults ─► priority ─► quota ─► store
                                      (resolves    (charges the namespace's
                                       spec.priority) quotas; needs the priority
                                                   class for PriorityClass scopes)
"""

from __future__ import annotations

from corral.api.admission.priority import PriorityAdmission
from corral.api.admission.quota import QuotaAdmission
from corral.api.registry import Admission, Registry

__all__ = ["PriorityAdmission", "QuotaAdmission", "default_plugins"]


def default_plugins(registry: Registry) -> list[Admission]:
    """The plugins the API server runs, in order."""
    return [PriorityAdmission(registry), QuotaAdmission(registry)]
