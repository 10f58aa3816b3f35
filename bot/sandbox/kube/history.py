"""The change history of the store: what watches replay, and the live feeds they follow.

A watch that starts from a resourceVersion needs every change after it. The history keeps the last
``size`` changes of all resources together (one global resourceVersion, as etcd has); a watch from
before the oldest one kept gets 410 Expired, and the caller must list again, as on a real cluster
after compaction.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from bot.sandbox.kube.api_errors import expired
from bot.sandbox.kube.objects import clone
from bot.sandbox.kube.resources import ResourceType


@dataclass(frozen=True)
class WatchEvent:
    """A change as in-process controllers receive it; ``type`` is ADDED, MODIFIED or DELETED."""

    type: str
    group: str
    plural: str
    object: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """A change as the history keeps it. ``object`` and ``previous`` are shared: never mutate them.

    ``previous`` is what lets a selective watch see an object enter (ADDED) or leave (DELETED) its
    selector through a MODIFIED change, as the real watch cache does.
    """

    resource_version: int
    type: str
    rtype: ResourceType
    object: dict[str, Any]
    previous: dict[str, Any] | None


class ChangeHistory:
    """The last ``size`` changes, and the queues that receive every new one."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the history must keep at least one change")
        self._size = size
        self._changes: deque[Change] = deque()
        # Changes up to this resourceVersion may have been dropped: a watch must start from here on.
        self._compacted_through = 0
        self._subscribers: list[asyncio.Queue[WatchEvent]] = []
        self._feeds: list[asyncio.Queue[Change | None]] = []

    def record(self, change: Change) -> None:
        if len(self._changes) >= self._size:
            self._compacted_through = self._changes.popleft().resource_version
        self._changes.append(change)
        for feed in self._feeds:
            feed.put_nowait(change)
        for queue in self._subscribers:
            # One copy per subscriber: in-process controllers may edit what they receive.
            queue.put_nowait(WatchEvent(change.type, change.rtype.group, change.rtype.plural, clone(change.object)))

    def since(self, resource_version: int) -> list[Change]:
        """Changes after ``resource_version``; 410 Expired if some of them were dropped."""
        if resource_version < self._compacted_through:
            raise expired(f"too old resource version: {resource_version} ({self._compacted_through + 1})")
        return [change for change in self._changes if change.resource_version > resource_version]

    def subscribe(self) -> asyncio.Queue[WatchEvent]:
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[WatchEvent]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def open_feed(self) -> asyncio.Queue[Change | None]:
        """A queue of every new change; ``None`` in it means "stop reading" (see ``interrupt_feeds``)."""
        feed: asyncio.Queue[Change | None] = asyncio.Queue()
        self._feeds.append(feed)
        return feed

    def close_feed(self, feed: asyncio.Queue[Change | None]) -> None:
        if feed in self._feeds:
            self._feeds.remove(feed)

    def interrupt_feeds(self) -> None:
        for feed in self._feeds:
            feed.put_nowait(None)
