"""Kubernetes API errors: one exception type that renders as a ``Status`` object.

The messages copy the real API server's wording (``k8s.io/apimachinery/pkg/api/errors``) because
callers, ours included, sometimes branch on them, and an operator reading a sandbox log should see
what a real cluster would have said.
"""

from __future__ import annotations

from typing import Any

from bot.sandbox.kube.resources import ResourceType

# What the real storage layer answers on a stale resourceVersion (``OptimisticLockErrorMsg``).
OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


class ApiError(Exception):
    """A request the API refuses; ``to_status()`` is the body the server sends back."""

    def __init__(
        self, status: int, reason: str, message: str, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.status,
        }
        if self.details:
            status["details"] = self.details
        return status

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.reason!r}, {self.message!r})"


def _details(rtype: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.qualified_name} "{name}" not found', details=_details(rtype, name))


def unknown_resource(path: str) -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={
        "causes": [{"reason": "UnexpectedServerResponse", "message": f"404 page not found: {path}"}],
    })


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{rtype.qualified_name} "{name}" already exists', details=_details(rtype, name)
    )


def conflict(rtype: ResourceType, name: str, cause: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rtype.qualified_name} "{name}": {cause}',
        details=_details(rtype, name),
    )


def invalid(rtype: ResourceType, name: str, cause: str) -> ApiError:
    qualified_kind = f"{rtype.kind}.{rtype.group}" if rtype.group else rtype.kind
    return ApiError(
        422,
        "Invalid",
        f'{qualified_kind} "{name}" is invalid: {cause}',
        details={**_details(rtype, name), "kind": rtype.kind},
    )


def unprocessable_patch(cause: str) -> ApiError:
    # The API server wraps every JSON-patch application failure, a failed ``test`` op included,
    # in a generic 422 (patch.go, kubernetes/kubernetes#68346).
    return ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {cause}")


def invalid_query(causes: list[str]) -> ApiError:
    # Bad list/watch options: 422 Invalid naming the ListOptions, as the API server does.
    listed = causes[0] if len(causes) == 1 else f"[{', '.join(causes)}]"  # an Aggregate prints so
    return ApiError(422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: {listed}',
                    details={"group": "meta.k8s.io", "kind": "ListOptions"})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    # A watch from a compacted resourceVersion: 410 with reason Expired (NewResourceExpired).
    return ApiError(410, "Expired", message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format ({content_type}) - accepted media types "
        f"include: {', '.join(accepted)}",
    )


def method_not_allowed(method: str, path: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource: "
                    f"{method} {path}")


def internal_error(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")
