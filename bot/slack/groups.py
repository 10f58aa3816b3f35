"""Which of the configured approver user groups a Slack user belongs to.

Slack sends only the clicker's user id; group membership comes from ``usergroups.users.list``
(scope ``usergroups:read``), asked per group and cached briefly. The cache is refreshed in the
background when it has expired (a click is judged on the previous answer meanwhile, for at most
``MAX_STALE_S``), so a Web API call is almost never inside a click's 3-second ack window, and a
member removed from the on-call group loses the right within about a minute. A group nobody
could read yet, or whose answer is older than ``MAX_STALE_S``, has no members: approvals fail closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.cards import slack_error

log = logging.getLogger(__name__)

MEMBERS_TTL_S = 60.0
MAX_STALE_S = 300.0  # past this, an answer that could not be refreshed counts for nothing
FAILED_LOOKUP_TTL_S = 5.0  # retry soon, but do not hammer a method that is failing


class ApproverGroups:
    def __init__(self, client: AsyncWebClient, *, ttl_s: float = MEMBERS_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._ttl = ttl_s
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}  # group -> (read at, members)
        self._retry_at: dict[str, float] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def groups_of(self, user_id: str, groups: Iterable[str]) -> tuple[str, ...]:
        """The groups among ``groups`` that have ``user_id`` as a member."""
        found = []
        for group in groups:
            if user_id in await self.members(group):
                found.append(group)
        return tuple(found)

    def prefetch(self, groups: Iterable[str]) -> None:
        """Read the groups in the background (at start), so the first click does not wait for it."""
        for group in groups:
            self._refresh_later(group)

    async def members(self, group: str) -> frozenset[str]:
        now = self._clock()
        cached = self._members.get(group)
        if cached is not None and now - cached[0] <= MAX_STALE_S:
            if now - cached[0] > self._ttl:
                self._refresh_later(group)
            return cached[1]
        if self._retry_at.get(group, 0.0) > now:
            return frozenset()
        await self._refresh(group)  # nothing usable: this click waits for the answer
        cached = self._members.get(group)
        return cached[1] if cached is not None and self._clock() - cached[0] <= MAX_STALE_S else frozenset()

    def _refresh_later(self, group: str) -> None:
        task = self._refreshing.get(group)
        if task is None or task.done():
            self._refreshing[group] = asyncio.create_task(self._refresh(group), name=f"usergroup-{group}")

    async def _refresh(self, group: str) -> None:
        lock = self._locks.setdefault(group, asyncio.Lock())
        async with lock:  # concurrent clicks wait for one lookup instead of each making their own
            cached = self._members.get(group)
            if cached is not None and self._clock() - cached[0] <= self._ttl:
                return
            members = await self._lookup(group)
            if members is None:
                self._retry_at[group] = self._clock() + FAILED_LOOKUP_TTL_S
            else:
                self._members[group] = (self._clock(), members)

    async def _lookup(self, group: str) -> frozenset[str] | None:
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning("usergroups.users.list for %s failed (%s): its members are not recognised until it answers",
                        group, slack_error(exc))
            return None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("usergroups.users.list for %s unreachable (%s): failing closed", group, type(exc).__name__)
            return None
        users = response.get("users") or []
        return frozenset(u for u in users if isinstance(u, str))
