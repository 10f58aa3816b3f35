"""In-memory storage of Kubernetes objects, with the API server's write semantics.

The HTTP layer (``server.py``) and the in-process controllers (the simulated Strimzi operator) both
go through this interface, so both see the same rules, those of a real API server:

- one global, monotonically increasing resourceVersion; a write that changes an object takes the
  next one, a write that changes nothing takes none and emits no event (as etcd's store does);
- ``metadata.generation`` starts at 1 and grows only when something outside metadata and status
  changes, never on labels, annotations or status;
- for types with a status subresource, the main endpoint keeps the stored status (a create drops
  the client's status) and ``/status`` changes nothing but status;
- 409 Conflict on a stale resourceVersion and on a uid that is not the object's (a precondition,
  also when it comes in a patch body); 409 AlreadyExists; 404 NotFound; custom resources refuse a
  PUT without resourceVersion (422), built-in types take it as unconditional;
- finalizers: a delete only marks the object (deletionTimestamp, generation + 1) until they are
  all removed; owner references: deleting an owner deletes the dependents left with no live owner
  (the garbage collector, done at once rather than in the background);
- graceful pod deletion, for the in-process kubelet only (``mark_terminating``): the pod shows a
  deletionTimestamp (``kubectl get pods`` says Terminating) until the kubelet deletes it for good;
- types that are views of another type's storage (events.k8s.io Events over core Events,
  ``views.py``): one store, each view converting on the way in and out, selectors applied to the
  view's form.

Not emulated: admission, schema validation, dryRun, managedFields, server-side apply, namespace
deletion, graceful deletion through the HTTP API (a DELETE is immediate). Objects returned are
always private copies. Nothing is locked: only the asyncio loop that runs the emulator may call the
store.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.sandbox.kube.addressing import (
    ObjectKey,
    check_subresource,
    generated_name,
    namespace_for_create,
    object_key,
    resource_type,
    valid_object_name,
)
from bot.sandbox.kube.api_errors import (
    ApiError,
    already_exists,
    bad_request,
    internal_error,
    invalid,
    not_found,
)
from bot.sandbox.kube.history import Change, ChangeHistory, WatchEvent
from bot.sandbox.kube.objects import accepted_body, clone, desired_state, now_rfc3339, with_type_identity
from bot.sandbox.kube.patching import apply_json_patch, apply_merge_patch
from bot.sandbox.kube.preconditions import check_update
from bot.sandbox.kube.resources import ResourceType
from bot.sandbox.kube.scale import apply_scale, to_scale
from bot.sandbox.kube.selectors import parse_field_selector, parse_label_selector
from bot.sandbox.kube.views import storage_type, to_storage, to_view

__all__ = ["ApiError", "Change", "ObjectStore", "WatchEvent"]

JsonPatchOperations = list[dict[str, Any]]
# Named outside the class, where ``list`` is still the builtin and not ObjectStore.list.
Changes = list[Change]

# Metadata the server owns: whatever a write sends for these is replaced by the stored value.
_SERVER_MANAGED_METADATA = (
    "name", "namespace", "uid", "creationTimestamp", "resourceVersion", "generation",
    "deletionTimestamp", "deletionGracePeriodSeconds",
)


class ObjectStore:
    """Every object of every served type, plus the change history watches start from."""

    def __init__(self, *, history_size: int = 1000) -> None:
        self._objects: dict[tuple[str, str], dict[ObjectKey, dict[str, Any]]] = {}
        self._resource_version = 0
        self._history = ChangeHistory(history_size)

    @property
    def resource_version(self) -> int:
        """The resourceVersion of the latest change (0 before any)."""
        return self._resource_version

    # Reads

    def get(self, group: str, plural: str, namespace: str | None, name: str) -> dict[str, Any]:
        view = resource_type(group, plural)
        return to_view(view, clone(self._existing(storage_type(view), namespace, name)[1]))

    def list(
        self,
        group: str,
        plural: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Matching objects sorted by namespace and name, and the resourceVersion to watch from."""
        view = resource_type(group, plural)
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        objects = self._objects.get(view.storage_key, {})
        shown = (to_view(view, obj) for key, obj in sorted(objects.items())
                 if not namespace or not view.namespaced or key[0] == namespace)
        items = [clone(obj) for obj in shown if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj)]
        return items, str(self._resource_version)

    def get_scale(self, group: str, plural: str, namespace: str | None, name: str) -> dict[str, Any]:
        rtype = resource_type(group, plural)
        return to_scale(rtype, self._existing(rtype, namespace, name)[1])

    # Writes

    def create(self, group: str, plural: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        view = resource_type(group, plural)
        rtype = storage_type(view)
        obj = to_storage(view, accepted_body(body))
        metadata = obj["metadata"]
        namespace = namespace_for_create(rtype, namespace, metadata)
        if metadata.get("resourceVersion"):
            raise internal_error("resourceVersion should not be set on objects to be created")
        if obj.get("kind") not in (None, rtype.kind):
            raise bad_request(f"the kind in the body ({obj['kind']}) is not {rtype.kind}")
        objects = self._objects.setdefault(rtype.storage_key, {})
        name = metadata.get("name") or generated_name(rtype, metadata, taken=lambda n: (namespace or "", n) in objects)
        if not valid_object_name(name):
            raise invalid(rtype, str(name), f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 '
                          "subdomain must consist of lower case alphanumeric characters, '-' or '.'")
        key = (namespace or "", name)
        if key in objects:
            raise already_exists(rtype, name)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            metadata.pop(field, None)
        metadata.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
        if namespace:
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if rtype.has_status_subresource:
            obj.pop("status", None)
            if rtype.initial_status is not None:
                obj["status"] = clone(rtype.initial_status)
        obj = with_type_identity(rtype.api_version(), rtype.kind, obj)
        resource_version = self._next_resource_version()
        metadata["resourceVersion"] = str(resource_version)
        objects[key] = obj
        self._record(resource_version, "ADDED", rtype, obj, None)
        return to_view(view, clone(obj))

    def replace(
        self,
        group: str,
        plural: str,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PUT: the whole object (or its status, or its Scale) as the caller wants it to be."""
        view = resource_type(group, plural)
        rtype = storage_type(view)
        check_subresource(rtype, subresource)
        key, current = self._existing(rtype, namespace, name)
        proposed = accepted_body(body)
        if subresource == "scale":
            scaled = apply_scale(rtype, clone(current), proposed)
            return to_scale(rtype, self._update(rtype, key, current, scaled, subresource=None))
        proposed = to_storage(view, proposed)
        return to_view(view, self._update(rtype, key, current, proposed, subresource=subresource,
                                          require_version=True))

    def merge_patch(
        self,
        group: str,
        plural: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        accepted = accepted_body(patch)
        return self._patch(group, plural, namespace, name, subresource, lambda doc: apply_merge_patch(doc, accepted))

    def json_patch(
        self,
        group: str,
        plural: str,
        namespace: str | None,
        name: str,
        ops: JsonPatchOperations,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        return self._patch(group, plural, namespace, name, subresource, lambda doc: apply_json_patch(doc, ops))

    def delete(self, group: str, plural: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Delete (or, while finalizers remain, mark for deletion); returns the last state."""
        view = resource_type(group, plural)
        rtype = storage_type(view)
        key, current = self._existing(rtype, namespace, name)
        if current["metadata"].get("finalizers"):
            if current["metadata"].get("deletionTimestamp"):
                return to_view(view, clone(current))
            marked = clone(current)
            marked["metadata"].update(
                deletionTimestamp=now_rfc3339(),
                deletionGracePeriodSeconds=0,
                generation=current["metadata"]["generation"] + 1,
            )
            return to_view(view, self._commit(rtype, key, current, marked))
        final_state = clone(current)
        resource_version = self._next_resource_version()
        final_state["metadata"]["resourceVersion"] = str(resource_version)
        self._remove(rtype, key, final_state, resource_version)
        return to_view(view, clone(final_state))

    def mark_terminating(self, group: str, plural: str, namespace: str | None, name: str,
                         grace_seconds: int) -> dict[str, Any]:
        """The first half of a graceful delete, as the API server does it for a pod: set
        deletionTimestamp (now + grace) and deletionGracePeriodSeconds; ``delete`` ends it."""
        if grace_seconds < 1:
            raise bad_request("a graceful deletion needs a grace period of at least 1 second")
        rtype = resource_type(group, plural)
        key, current = self._existing(rtype, namespace, name)
        if current["metadata"].get("deletionTimestamp"):
            return clone(current)
        marked = clone(current)
        deadline = datetime.now(UTC) + timedelta(seconds=grace_seconds)
        marked["metadata"].update(deletionTimestamp=deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  deletionGracePeriodSeconds=grace_seconds)
        return self._commit(rtype, key, current, marked)

    # Change feeds

    def subscribe(self) -> asyncio.Queue[WatchEvent]:
        """A queue that receives every later change of every resource (unbounded: keep reading)."""
        return self._history.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[WatchEvent]) -> None:
        self._history.unsubscribe(queue)

    def changes_since(self, resource_version: int) -> Changes:
        """Changes after ``resource_version``; 410 Expired if some of them left the history."""
        return self._history.since(resource_version)

    def open_change_feed(self) -> asyncio.Queue[Change | None]:
        """Like ``subscribe`` but with history records, for watches served over HTTP."""
        return self._history.open_feed()

    def close_change_feed(self, feed: asyncio.Queue[Change | None]) -> None:
        self._history.close_feed(feed)

    def interrupt_change_feeds(self) -> None:
        """Wake every open feed with ``None``: the server is stopping and its watches must end."""
        self._history.interrupt_feeds()

    # Internals

    def _existing(
        self, rtype: ResourceType, namespace: str | None, name: str
    ) -> tuple[ObjectKey, dict[str, Any]]:
        key = object_key(rtype, namespace, name)
        obj = self._objects.get(rtype.storage_key, {}).get(key)
        if obj is None:
            raise not_found(rtype, name)
        return key, obj

    def _patch(
        self,
        group: str,
        plural: str,
        namespace: str | None,
        name: str,
        subresource: str | None,
        patched: Callable[[Any], Any],
    ) -> dict[str, Any]:
        view = resource_type(group, plural)
        rtype = storage_type(view)
        check_subresource(rtype, subresource)
        key, current = self._existing(rtype, namespace, name)
        if subresource == "scale":
            scaled = apply_scale(rtype, clone(current), patched(to_scale(rtype, current)))
            return to_scale(rtype, self._update(rtype, key, current, scaled, subresource=None))
        # A patch applies to the object as the caller's API shows it.
        proposed = patched(to_view(view, clone(current)))
        if not isinstance(proposed, dict):
            raise invalid(view, name, "the patched object is not a JSON object")
        return to_view(view, self._update(rtype, key, current, to_storage(view, proposed), subresource=subresource))

    def _update(
        self,
        rtype: ResourceType,
        key: ObjectKey,
        current: dict[str, Any],
        proposed: dict[str, Any],
        *,
        subresource: str | None,
        require_version: bool = False,
    ) -> dict[str, Any]:
        """Check the preconditions ``proposed`` carries, then store what the endpoint lets it change."""
        name = key[1]
        current_metadata = current["metadata"]
        proposed_metadata = check_update(rtype, key, current_metadata, proposed, require_version=require_version)

        if subresource == "status":
            updated = clone(current)
            if "status" in proposed:
                updated["status"] = proposed["status"]
            else:
                updated.pop("status", None)
            return self._commit(rtype, key, current, updated)

        updated = with_type_identity(current["apiVersion"], current["kind"], proposed)
        if rtype.has_status_subresource:
            updated.pop("status", None)
            if "status" in current:
                updated["status"] = clone(current["status"])
        metadata = dict(proposed_metadata)
        for field in _SERVER_MANAGED_METADATA:
            if field in current_metadata:
                metadata[field] = current_metadata[field]
            else:
                metadata.pop(field, None)
        updated["metadata"] = metadata
        if current_metadata.get("deletionTimestamp"):
            added = set(metadata.get("finalizers") or []) - set(current_metadata.get("finalizers") or [])
            if added:
                raise invalid(rtype, name, "metadata.finalizers: Forbidden: no new finalizers can be added if "
                              "the object is being deleted")
        if desired_state(updated) != desired_state(current):
            metadata["generation"] = current_metadata["generation"] + 1
        return self._commit(rtype, key, current, updated)

    def _commit(
        self, rtype: ResourceType, key: ObjectKey, current: dict[str, Any], updated: dict[str, Any]
    ) -> dict[str, Any]:
        """Store ``updated`` (a private dict) unless it equals ``current``; delete it once finalized."""
        if updated == current:
            return clone(current)
        resource_version = self._next_resource_version()
        updated["metadata"]["resourceVersion"] = str(resource_version)
        metadata = updated["metadata"]
        # Gone once marked and nothing holds it: no finalizer left and no grace period running.
        if metadata.get("deletionTimestamp") and not metadata.get("finalizers") \
                and not metadata.get("deletionGracePeriodSeconds"):
            self._remove(rtype, key, updated, resource_version)
        else:
            self._objects[rtype.storage_key][key] = updated
            self._record(resource_version, "MODIFIED", rtype, updated, current)
        return clone(updated)

    def _remove(
        self, rtype: ResourceType, key: ObjectKey, final_state: dict[str, Any], resource_version: int
    ) -> None:
        previous = self._objects[rtype.storage_key].pop(key)
        self._record(resource_version, "DELETED", rtype, final_state, previous)
        self._collect_dependents_of(final_state["metadata"]["uid"])

    def _collect_dependents_of(self, owner_uid: str) -> None:
        for (group, plural), objects in list(self._objects.items()):
            for key, obj in list(objects.items()):
                owners = {ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []
                          if isinstance(ref, dict)}
                if owner_uid in owners and key in objects and not owners & self._live_uids():
                    self.delete(group, plural, key[0] or None, key[1])

    def _live_uids(self) -> set[str]:
        return {obj["metadata"]["uid"] for objects in self._objects.values() for obj in objects.values()}

    def _next_resource_version(self) -> int:
        self._resource_version += 1
        return self._resource_version

    def _record(
        self,
        resource_version: int,
        change_type: str,
        rtype: ResourceType,
        obj: dict[str, Any],
        previous: dict[str, Any] | None,
    ) -> None:
        self._history.record(Change(resource_version, change_type, rtype, obj, previous))
