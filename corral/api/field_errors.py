"""Builders for validation causes, worded as Kubernetes' field errors are
(k8s.io/apimachinery/pkg/util/validation/field):

    Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must ...
    Required value
    Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"
    Duplicate value: "web"
    Forbidden: may not be specified when `type` is 'ClusterIP'
    Not found: "data"
"""

from __future__ import annotations

import json
from typing import Any

from corral.api.errors import Cause


def show(value: Any) -> str:
    """A value as Kubernetes prints it in a message: strings quoted, numbers bare."""
    text = json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= 120 else text[:117] + "..."


class FieldErrors(list[Cause]):
    """The causes found so far; validators append to one shared list."""

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.append(Cause(path, f"Invalid value: {show(value)}: {detail}", "FieldValueInvalid"))

    def required(self, path: str, detail: str = "") -> None:
        message = f"Required value: {detail}" if detail else "Required value"
        self.append(Cause(path, message, "FieldValueRequired"))

    def not_supported(self, path: str, value: Any, supported: tuple[str, ...]) -> None:
        listed = ", ".join(show(s) for s in supported)
        self.append(Cause(path, f"Unsupported value: {show(value)}: supported values: {listed}",
                          "FieldValueNotSupported"))

    def duplicate(self, path: str, value: Any) -> None:
        self.append(Cause(path, f"Duplicate value: {show(value)}", "FieldValueDuplicate"))

    def forbidden(self, path: str, detail: str) -> None:
        self.append(Cause(path, f"Forbidden: {detail}", "FieldValueForbidden"))

    def not_found(self, path: str, value: Any) -> None:
        self.append(Cause(path, f"Not found: {show(value)}", "FieldValueNotFound"))

    def too_many(self, path: str, count: int, limit: int) -> None:
        self.append(Cause(path, f"Too many: {count}: must have at most {limit} items",
                          "FieldValueTooMany"))

    def too_long(self, path: str, limit: int) -> None:
        self.append(Cause(path, f"Too long: must have at most {limit} bytes",
                          "FieldValueTooLong"))

    # Checks shared by many fields.

    def non_negative(self, path: str, value: int | None) -> None:
        if value is not None and value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")

    def positive(self, path: str, value: int | None) -> None:
        if value is not None and value < 1:
            self.invalid(path, value, "must be greater than 0")

    def in_range(self, path: str, value: int | None, low: int, high: int) -> None:
        if value is not None and not low <= value <= high:
            self.invalid(path, value, f"must be between {low} and {high}, inclusive")

    def one_of(self, path: str, value: str | None, supported: tuple[str, ...]) -> None:
        if value is not None and value not in supported:
            self.not_supported(path, value, supported)

    def each(self, path: str, value: str, problems: list[str]) -> None:
        for problem in problems:
            self.invalid(path, value, problem)

    def immutable(self, path: str, new: Any, old: Any) -> None:
        if new != old:
            self.invalid(path, new, "field is immutable")
