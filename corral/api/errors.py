"""API errors, each one a Kubernetes Status with its reason and HTTP code.

    APIError                     (500 InternalError)
     ├── BadRequest              400  the request itself is malformed (bad JSON/YAML, bad query)
     ├── Unauthorized            401  no token, or a token the server does not know
     ├── Forbidden               403  not allowed (e.g. quota exceeded, namespace terminating)
     ├── NotFound                404  the object (or its namespace) does not exist
     ├── MethodNotAllowed        405  the verb is not served on this path
     ├── AlreadyExists           409  create of a name that is taken
     ├── Conflict                409  resourceVersion precondition failed: re-read, retry
     ├── Gone                    410  watch/list from a compacted resourceVersion: re-list
     ├── RequestEntityTooLarge   413  a body (or what it expands to) over the 3 MB limit
     ├── UnsupportedMediaType    415  a body the server does not decode (a protobuf kind or field it lacks)
     ├── Invalid                 422  the object fails validation; ``causes`` name the fields
     ├── TooManyRequests         429  the client's lane is full: retry after Retry-After
     └── ServiceUnavailable      503  a backend (store, agent) cannot be reached

Only the API layer turns these into HTTP responses (``to_status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cause:
    field: str  # e.g. "spec.replicas"
    message: str
    reason: str = "FieldValueInvalid"  # FieldValueRequired, FieldValueNotSupported, ...

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


class APIError(Exception):
    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        group: str = "",
        causes: list[Cause] | None = None,
        retry_after: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group
        self.causes = causes or []
        self.retry_after = retry_after

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            status["details"] = details
        return status


class BadRequest(APIError):
    code = 400
    reason = "BadRequest"


class Unauthorized(APIError):
    code = 401
    reason = "Unauthorized"


class Forbidden(APIError):
    code = 403
    reason = "Forbidden"


class NotFound(APIError):
    code = 404
    reason = "NotFound"

    def to_status(self) -> dict[str, Any]:
        # Kubernetes' NotFound always carries details (kind and name, when known);
        # clients read them unchecked (`kubectl debug` dereferences them).
        status = super().to_status()
        status.setdefault("details", {})
        return status


class MethodNotAllowed(APIError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(APIError):
    code = 409
    reason = "AlreadyExists"


class Conflict(APIError):
    code = 409
    reason = "Conflict"


class Gone(APIError):
    code = 410
    reason = "Expired"


class RequestEntityTooLarge(APIError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(APIError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(APIError):
    code = 422
    reason = "Invalid"


class TooManyRequests(APIError):
    code = 429
    reason = "TooManyRequests"


class ServiceUnavailable(APIError):
    code = 503
    reason = "ServiceUnavailable"


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> Invalid:
    """An Invalid error worded as Kubernetes words it:
    'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be ...'."""
    qualified = f"{kind}.{group}" if group else kind
    detail = ", ".join(f"{c.field}: {c.message}" for c in causes)
    return Invalid(
        f'{qualified} "{name}" is invalid: {detail}', kind=kind, name=name, group=group,
        causes=causes,
    )


_BY_STATUS: dict[tuple[int, str], type[APIError]] = {
    (cls.code, cls.reason): cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, AlreadyExists,
                Conflict, Gone, RequestEntityTooLarge, UnsupportedMediaType, Invalid,
                TooManyRequests, ServiceUnavailable)
}


def from_status(code: int, body: dict[str, Any] | None) -> APIError:
    """Rebuild the error a server sent (used by the client library)."""
    body = body or {}
    reason = str(body.get("reason", ""))
    cls = _BY_STATUS.get((code, reason))
    if cls is None:
        cls = next((c for (c_code, _), c in _BY_STATUS.items() if c_code == code), APIError)
    details = body.get("details") or {}
    causes = [
        Cause(field=c.get("field", ""), message=c.get("message", ""),
              reason=c.get("reason", "FieldValueInvalid"))
        for c in details.get("causes", []) or []
    ]
    return cls(
        str(body.get("message") or f"HTTP {code}"), kind=details.get("kind", ""),
        name=details.get("name", ""), group=details.get("group", ""), causes=causes,
    )
