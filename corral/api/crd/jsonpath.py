"""The simple JSONPaths a CRD names (".spec.replicas" for the scale subresource,
".status.items[0].name" in a printer column): read one, or set one."""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[tuple[str, str]]:
    return _STEP.findall(path.strip().removeprefix("{").removesuffix("}"))


def lookup(obj: Any, path: str) -> Any:
    """The value at ``path`` ("{.spec.x}" also); None when any step is absent."""
    value = obj
    for name, index in _steps(path):
        if name:
            value = value.get(name) if isinstance(value, dict) else None
        else:
            i = int(index)
            value = value[i] if isinstance(value, list) and i < len(value) else None
        if value is None:
            return None
    return value


def assign(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the field at a path of field names only, creating objects on the way."""
    names = [name for name, _ in _steps(path)]
    target = obj
    for name in names[:-1]:
        nxt = target.get(name)
        if not isinstance(nxt, dict):
            nxt = target[name] = {}
        target = nxt
    target[names[-1]] = value
