"""Tables of configuration objects: configmaps, secrets and serviceaccounts."""

from __future__ import annotations

from datetime import datetime

from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, age_of, name_of

CONFIGMAP_COLUMNS = (NAME, Column("Data", "Data contains the configuration data."), AGE)


def configmap_cells(cm: Object, now: datetime) -> list[Cell]:
    data = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [name_of(cm), data, age_of(cm, now)]


SECRET_COLUMNS = (
    NAME,
    Column("Type", "Used to facilitate programmatic handling of secret data."),
    Column("Data", "Data contains the secret data."),
    AGE,
)


def secret_cells(secret: Object, now: datetime) -> list[Cell]:
    return [name_of(secret), secret.get("type") or "Opaque", len(secret.get("data") or {}),
            age_of(secret, now)]


SERVICEACCOUNT_COLUMNS = (
    NAME,
    Column("Secrets", "Secrets is a list of the secrets in the same namespace that pods "
           "running using this ServiceAccount are allowed to use.", "integer"),
    AGE,
)


def serviceaccount_cells(sa: Object, now: datetime) -> list[Cell]:
    return [name_of(sa), len(sa.get("secrets") or []), age_of(sa, now)]


CONFIGMAPS = Printer(CONFIGMAP_COLUMNS, configmap_cells)
SECRETS = Printer(SECRET_COLUMNS, secret_cells)
SERVICEACCOUNTS = Printer(SERVICEACCOUNT_COLUMNS, serviceaccount_cells)
