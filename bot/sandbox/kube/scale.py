"""The ``/scale`` subresource: an ``autoscaling/v1`` Scale view of a resource's replica count."""

from __future__ import annotations

from typing import Any

from bot.sandbox.kube.api_errors import bad_request, invalid
from bot.sandbox.kube.resources import ResourceType, ScalePaths


def _read_path(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    current: Any = obj
    for part in path:
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def scale_paths(rtype: ResourceType) -> ScalePaths:
    if rtype.scale is None:
        raise bad_request(f"{rtype.qualified_name} has no scale subresource")
    return rtype.scale


def to_scale(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The Scale a client sees for ``obj``; it shares the object's uid and resourceVersion."""
    paths = scale_paths(rtype)
    metadata = obj["metadata"]
    scale_metadata = {
        key: metadata[key]
        for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        if key in metadata
    }
    status: dict[str, Any] = {"replicas": _read_path(obj, paths.status_replicas) or 0}
    selector = _read_path(obj, paths.label_selector)
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_metadata,
        "spec": {"replicas": _read_path(obj, paths.spec_replicas) or 0},
        "status": status,
    }


def apply_scale(rtype: ResourceType, obj: dict[str, Any], scale: Any) -> dict[str, Any]:
    """``obj`` (a private copy) with the Scale's replicas, uid and resourceVersion written into it."""
    paths = scale_paths(rtype)
    if not isinstance(scale, dict) or not isinstance(scale.get("spec", {}), dict):
        raise bad_request("a Scale must be an object with a 'spec' object")
    replicas = scale.get("spec", {}).get("replicas")
    name = obj["metadata"]["name"]
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid(rtype, name, f"spec.replicas: Invalid value: {replicas!r}: must be a non-negative integer")
    parent = obj
    for part in paths.spec_replicas[:-1]:
        parent = parent.setdefault(part, {})
    parent[paths.spec_replicas[-1]] = replicas
    scale_metadata = scale.get("metadata") or {}
    for key in ("uid", "resourceVersion"):
        # A value given in the Scale becomes a precondition of the update; none means unconditional.
        if scale_metadata.get(key):
            obj["metadata"][key] = scale_metadata[key]
    return obj
