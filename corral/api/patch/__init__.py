"""PATCH for every kind: JSON patch, merge patch, strategic merge patch and
server-side apply (see apply.py for the table of content types)."""

from __future__ import annotations

from corral.api.patch.apply import SUPPORTED_PATCH_TYPES, apply_patch, apply_server_side

__all__ = ["SUPPORTED_PATCH_TYPES", "apply_patch", "apply_server_side"]
