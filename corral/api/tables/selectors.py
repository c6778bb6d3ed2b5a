"""Labels and label selectors written as Kubernetes' labels.Selector.String()
and labels.FormatLabels print them (keys sorted)."""

from __future__ import annotations

from typing import Any

NONE = "<none>"


def format_labels(labels: dict[str, str] | None) -> str:
    if not labels:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def format_selector(selector: dict[str, Any] | None) -> str:
    """A metav1.LabelSelector as text: "app=web,tier in (a,b),!legacy"."""
    if selector is None:
        return NONE
    requirements: list[tuple[str, str]] = [
        (key, f"{key}={value}") for key, value in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        requirements.append((expr.get("key", ""), _expression(expr)))
    return ",".join(text for _, text in sorted(requirements))


def _expression(expr: dict[str, Any]) -> str:
    key, operator = str(expr.get("key", "")), expr.get("operator", "")
    values = ",".join(sorted(expr.get("values") or []))
    if operator == "In":
        return f"{key} in ({values})"
    if operator == "NotIn":
        return f"{key} notin ({values})"
    if operator == "DoesNotExist":
        return f"!{key}"
    return key  # Exists
