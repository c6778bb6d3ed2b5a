"""The table of policy/v1 PodDisruptionBudgets, with kubectl's columns."""

from __future__ import annotations

from datetime import datetime

from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, age_of, name_of

PDB_COLUMNS = (
    NAME,
    Column("Min Available", "The minimum number of pods that must be available."),
    Column("Max Unavailable", "The maximum number of pods that may be unavailable."),
    Column("Allowed Disruptions", "Calculated number of pods that may be disrupted at this "
           "time.", "integer"),
    AGE,
)


def pdb_cells(pdb: Object, now: datetime) -> list[Cell]:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    return [name_of(pdb), "N/A" if min_available is None else str(min_available),
            "N/A" if max_unavailable is None else str(max_unavailable),
            int(status.get("disruptionsAllowed", 0)), age_of(pdb, now)]


PDBS = Printer(PDB_COLUMNS, pdb_cells)
