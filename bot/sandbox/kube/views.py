"""Resource types that are views of another type's storage: events.k8s.io/v1 Events over core v1 Events.

A real API server keeps one Event store and serves it through both APIs, converting field names
on the way in and out (``pkg/apis/events/v1/conversion.go``): an Event created through either API
is listed, watched and described through the other too (``kubectl get events`` and ``kubectl
describe`` read core v1; Strimzi writes events.k8s.io/v1). The store keeps the core v1 form.

==============================  ============================
events.k8s.io/v1                core v1
==============================  ============================
regarding                       involvedObject
note                            message
reportingController             reportingComponent
deprecatedSource                source
deprecatedFirstTimestamp        firstTimestamp
deprecatedLastTimestamp         lastTimestamp
deprecatedCount                 count
==============================  ============================

The other fields (action, reason, type, eventTime, series, related, reportingInstance) have the
same names in both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.sandbox.kube.resources import EVENTS_GROUP, ResourceType, lookup_resource_type

Converter = Callable[[dict[str, Any]], dict[str, Any]]

EVENTS_V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_CORE_TO_EVENTS_V1 = {core: v1 for v1, core in EVENTS_V1_TO_CORE.items()}


def _renamed(names: dict[str, str]) -> Converter:
    def convert(obj: dict[str, Any]) -> dict[str, Any]:
        return {names.get(key, key): value for key, value in obj.items()}

    return convert


# view (group, plural) -> (to storage form, from storage form)
_VIEWS: dict[tuple[str, str], tuple[Converter, Converter]] = {
    (EVENTS_GROUP, "events"): (_renamed(EVENTS_V1_TO_CORE), _renamed(_CORE_TO_EVENTS_V1)),
}


def storage_type(rtype: ResourceType) -> ResourceType:
    """The type whose storage ``rtype`` reads and writes (itself unless it is a view)."""
    if rtype.stored_as is None:
        return rtype
    stored = lookup_resource_type(*rtype.stored_as)
    if stored is None:
        raise LookupError(f"{rtype.qualified_name} is stored as {rtype.stored_as}, which is not served")
    return stored


def to_storage(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """A body written through ``rtype`` in the storage type's form (a new dict for views)."""
    converters = _VIEWS.get((rtype.group, rtype.plural))
    return converters[0](obj) if converters else obj


def to_view(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """A stored object as ``rtype`` shows it (a new dict for views; the same dict otherwise)."""
    converters = _VIEWS.get((rtype.group, rtype.plural))
    return converters[1](obj) if converters else obj
