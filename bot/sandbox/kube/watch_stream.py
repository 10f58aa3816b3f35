"""Watch over HTTP: newline-delimited JSON events, as ``kubernetes.watch.Watch`` reads them.

- No ``resourceVersion`` (or ``"0"``): one synthetic ADDED per matching object, then live changes.
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

from bot.sandbox.kube.api_errors import ApiError, bad_request
from bot.sandbox.kube.history import Change
from bot.sandbox.kube.resources import ResourceType
from bot.sandbox.kube.selectors import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector
from bot.sandbox.kube.store import ObjectStore


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

    @classmethod
    def from_query(
        cls,
        query: Any,
        rtype: ResourceType,
        version: str,
        namespace: str | None,
        settings: WatchSettings,
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
            bookmarks=query.get("allowWatchBookmarks", "").lower() in ("true", "1"),
        )

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.labels.matches(obj["metadata"].get("labels")) and self.fields.matches(obj)

    def event_for(self, change: Change) -> tuple[str, dict[str, Any]] | None:
        """The event this watch sees for ``change``, if any."""
        if change.rtype is not self.rtype:
            return None
        now, before = self.matches(change.object), self.matches(change.previous)
        if change.type == "MODIFIED":
            if now:
                return ("MODIFIED" if before else "ADDED"), change.object
            return ("DELETED", change.object) if before else None
        if change.type == "DELETED":
            return ("DELETED", change.object) if now or before else None
        return (change.type, change.object) if now else None


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
    # Nothing awaits from here to open_change_feed(): no change can fall between the replayed
    # state and the live feed.
    if watch.resource_version in (None, "0"):
        items, _ = store.list(rtype.group, rtype.plural, watch.namespace)
        replay = [("ADDED", item) for item in items if watch.matches(item)]
    else:
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
    # A shallow copy is enough: only apiVersion differs, and the stored object is never mutated.
    return {"type": event_type, "object": {**obj, "apiVersion": watch.rtype.api_version(watch.version)}}


def _bookmark(store: ObjectStore, watch: WatchRequest) -> dict[str, Any]:
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": watch.rtype.kind,
            "apiVersion": watch.rtype.api_version(watch.version),
            "metadata": {"resourceVersion": str(store.resource_version)},
        },
    }


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
