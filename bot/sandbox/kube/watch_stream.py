"""Watch over HTTP: newline-delimited JSON events, as ``kubernetes.watch.Watch`` reads them.

- No ``resourceVersion`` (or ``"0"``): one synthetic ADDED per matching object, then live changes.
- ``sendInitialEvents=true`` (client-go's streaming list, with ``resourceVersionMatch=NotOlderThan``):
  the same synthetic ADDED events whatever the resourceVersion, then, with ``allowWatchBookmarks``,
  the BOOKMARK annotated ``k8s.io/initial-events-end: "true"`` that tells the client its initial list
  is complete, then live changes. ``sendInitialEvents=false`` without a resourceVersion starts with
  live changes only. Invalid combinations answer 422, with the API server's wording.
- ``resourceVersion=N``: every change after N, replayed from the history, then live changes, in
  resourceVersion order. If the history no longer reaches back to N, the stream carries one ERROR
  event holding a 410 Expired Status and ends: the python client raises ``ApiException(410)`` and
  the caller must list again, as after etcd compaction on a real cluster.
- Selectors apply to every event; an object modified into or out of the selector arrives as ADDED
  or DELETED, as the real watch cache sends it.
- ``allowWatchBookmarks``: BOOKMARK events while idle and one just before the stream ends.
- ``timeoutSeconds`` ends the stream; so do a client that goes away and the server shutting down.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.sandbox.kube.api_errors import ApiError, bad_request, invalid_query
from bot.sandbox.kube.history import Change
from bot.sandbox.kube.resources import ResourceType
from bot.sandbox.kube.selectors import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector
from bot.sandbox.kube.store import ObjectStore
from bot.sandbox.kube.tables import TableRequest, to_table
from bot.sandbox.kube.views import to_view

INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"
NOT_OLDER_THAN = "NotOlderThan"


@dataclass(frozen=True)
class WatchSettings:
    bookmark_interval: float = 30.0
    # How often an idle watch looks whether its client left or the server is stopping.
    idle_check_interval: float = 0.5
    # A real API server picks 30-60 min when the client names no timeout.
    default_timeout: float = 1800.0


@dataclass(frozen=True)
class WatchRequest:
    rtype: ResourceType
    version: str
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    resource_version: str | None
    timeout: float
    bookmarks: bool
    # None when the client did not say (the legacy watch), else what it asked for.
    send_initial_events: bool | None = None
    # Events carry one-row Tables instead of objects (``kubectl get -w``).
    table: TableRequest | None = None

    @classmethod
    def from_query(
        cls,
        query: Any,
        rtype: ResourceType,
        version: str,
        namespace: str | None,
        settings: WatchSettings,
        table: TableRequest | None = None,
    ) -> WatchRequest:
        timeout_text = query.get("timeoutSeconds")
        try:
            timeout = float(timeout_text) if timeout_text else settings.default_timeout
        except ValueError as error:
            raise bad_request(f"invalid timeoutSeconds {timeout_text!r}") from error
        return cls(
            rtype=rtype,
            version=version,
            namespace=namespace,
            labels=parse_label_selector(query.get("labelSelector")),
            fields=parse_field_selector(query.get("fieldSelector")),
            resource_version=query.get("resourceVersion") or None,
            timeout=max(timeout, 0.0),
            bookmarks=_flag(query.get("allowWatchBookmarks")) is True,
            send_initial_events=_initial_events_option(query),
            table=table,
        )

    @property
    def replays_current_state(self) -> bool:
        """Whether the watch starts with one ADDED per matching object (rather than from a history)."""
        if self.send_initial_events is not None:
            return self.send_initial_events
        return self.resource_version in (None, "0")

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.labels.matches(obj["metadata"].get("labels")) and self.fields.matches(obj)

    def event_for(self, change: Change) -> tuple[str, dict[str, Any]] | None:
        """The event this watch sees for ``change``, if any (objects as this watch's type shows them)."""
        if change.rtype.storage_key != self.rtype.storage_key:
            return None
        current = to_view(self.rtype, change.object)
        previous = to_view(self.rtype, change.previous) if change.previous is not None else None
        now, before = self.matches(current), self.matches(previous)
        if change.type == "MODIFIED":
            if now:
                return ("MODIFIED" if before else "ADDED"), current
            return ("DELETED", current) if before else None
        if change.type == "DELETED":
            return ("DELETED", current) if now or before else None
        return (change.type, current) if now else None


class _ClientGone(Exception):
    pass


async def serve_watch(
    request: web.Request,
    store: ObjectStore,
    watch: WatchRequest,
    settings: WatchSettings,
    stopping: asyncio.Event,
) -> web.StreamResponse:
    rtype = watch.rtype
    expired: ApiError | None = None
    replay: list[tuple[str, dict[str, Any]]] = []
    initial_events_end: dict[str, Any] | None = None
    # Nothing awaits from here to open_change_feed(): no change can fall between the replayed
    # state and the live feed.
    if watch.replays_current_state:
        items, _ = store.list(rtype.group, rtype.plural, watch.namespace)
        replay = [("ADDED", item) for item in items if watch.matches(item)]
        if watch.send_initial_events and watch.bookmarks:
            initial_events_end = _bookmark(store, watch, initial_events_end=True)
    elif watch.resource_version is not None and watch.resource_version != "0":  # else: live changes only
        try:
            changes = store.changes_since(_resource_version(watch.resource_version))
        except ApiError as error:
            if error.status != 410:
                raise
            expired = error
        else:
            replay = [event for event in map(watch.event_for, changes) if event is not None]
    feed = store.open_change_feed()
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            if expired is not None:
                await _send(response, {"type": "ERROR", "object": expired.to_status()})
            else:
                for event_type, obj in replay:
                    await _send(response, _event(event_type, obj, watch))
                if initial_events_end is not None:
                    await _send(response, initial_events_end)
                await _follow(request, response, store, feed, watch, settings, stopping)
            await response.write_eof()
        except (_ClientGone, ConnectionResetError):
            pass
        return response
    finally:
        store.close_change_feed(feed)


async def _follow(
    request: web.Request,
    response: web.StreamResponse,
    store: ObjectStore,
    feed: asyncio.Queue[Change | None],
    watch: WatchRequest,
    settings: WatchSettings,
    stopping: asyncio.Event,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + watch.timeout
    next_bookmark = loop.time() + settings.bookmark_interval if watch.bookmarks else math.inf
    while not stopping.is_set():
        if request.transport is None or request.transport.is_closing():
            raise _ClientGone
        now = loop.time()
        if now >= deadline:
            break
        if feed.empty() and now >= next_bookmark:
            await _send(response, _bookmark(store, watch))
            next_bookmark = now + settings.bookmark_interval
        wait = min(deadline - now, settings.idle_check_interval, max(next_bookmark - now, 0.0))
        try:
            change = await asyncio.wait_for(feed.get(), timeout=wait)
        except TimeoutError:
            continue
        if change is None:  # interrupted: the server is stopping
            continue
        event = watch.event_for(change)
        if event is not None:
            await _send(response, _event(event[0], event[1], watch))
    if watch.bookmarks and feed.empty():
        await _send(response, _bookmark(store, watch))


def _event(event_type: str, obj: dict[str, Any], watch: WatchRequest) -> dict[str, Any]:
    api_version = watch.rtype.api_version(watch.version)
    if watch.table is not None:
        one_row = to_table(watch.table, watch.rtype, api_version, [obj], obj["metadata"].get("resourceVersion"))
        return {"type": event_type, "object": one_row}
    # A shallow copy is enough: only apiVersion differs, and the stored object is never mutated.
    return {"type": event_type, "object": {**obj, "apiVersion": api_version}}


def _bookmark(store: ObjectStore, watch: WatchRequest, *, initial_events_end: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": str(store.resource_version)}
    if initial_events_end:
        metadata["annotations"] = {INITIAL_EVENTS_END_ANNOTATION: "true"}
    return {
        "type": "BOOKMARK",
        "object": {"kind": watch.rtype.kind, "apiVersion": watch.rtype.api_version(watch.version),
                   "metadata": metadata},
    }


def _flag(text: str | None) -> bool | None:
    if text is None or text == "":
        return None
    return text.lower() in ("true", "1")


def _initial_events_option(query: Any) -> bool | None:
    """``sendInitialEvents``, checked the way the API server checks it (validateWatchOptions)."""
    send_initial_events = _flag(query.get("sendInitialEvents"))
    match = query.get("resourceVersionMatch") or ""
    problems = []
    if send_initial_events is not None and match != NOT_OLDER_THAN:
        problems.append(f"resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch "
                        f"to {NOT_OLDER_THAN}")
    if match:
        if send_initial_events is None:
            problems.append("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
                            "sendInitialEvents is provided")
        if match != NOT_OLDER_THAN:
            problems.append(f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                            f'"{NOT_OLDER_THAN}"')
    if problems:
        raise invalid_query(problems)
    return send_initial_events


async def _send(response: web.StreamResponse, event: dict[str, Any]) -> None:
    await response.write(json.dumps(event).encode() + b"\n")


def _resource_version(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise bad_request(f"invalid resource version: {text!r}") from error
    if value < 0:
        raise bad_request(f"invalid resource version: {text!r}")
    return value
