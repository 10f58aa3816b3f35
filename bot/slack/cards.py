"""Run cards in Slack: one message per run, posted once, then edited in place as the run moves.

Every replica hears every run event (``RunEventBus``), so the card is made safe to update from
anywhere:

* Where the card is (channel, ts), how far it has been rendered (the run's store version) and how
  much of the audit stream went to its thread live in Redis, not in this process.
* A flush takes a short Redis lock per card, reloads the run *from the store* and renders that, and
  edits only when the stored version is newer than the rendered one: an older state can never
  overwrite a newer one, and two replicas hearing the same event make one edit, not two.
* Edits are coalesced to one per ``min_interval_s`` per message (the last edit time is in Redis
  too), so a burst of progress events costs one ``chat.update``.
* A Slack error (after the SDK's own 429 retries) loses nothing: the render mark is not advanced,
  the flush is retried with backoff, and the next event renders the latest run anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.foreground import Foreground
from bot.slack.blocks import fallback_text, run_card_blocks, thread_line
from bot.store.repository import RedisRunRepository
from bot.store.run_events import RunEvent
from handlers.clusters import ManagedCluster
from handlers.ports import StoreUnavailable
from runbooks.engine.models import Run

log = logging.getLogger(__name__)

CARD_TTL_S = 30 * 86400  # a card's bookkeeping outlives any run; then it is only history
LOCK_TTL_MS = 60_000
FLUSH_TIMEOUT_S = 45.0  # shorter than the lock, so a flush never outlives the lock it holds
THREAD_INTERVAL_S = 3.0  # thread replies are batched: chat.postMessage allows ~1 per second per channel
MAX_BACKOFF_S = 30.0
MAX_FAILURES = 12  # then wait for the next event instead of retrying by itself
# A card is rendered a moment after the first event of a burst (a run's creation, a click and its
# step start come within milliseconds), so one render covers the burst and stays out of the way of
# the acks being answered right then.
DEBOUNCE_S = 0.25
MAX_CONCURRENT_FLUSHES = 4  # bounds Redis connections and Slack calls when many runs move at once
# Errors that no retry fixes: the bot cannot post there until a human acts.
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "restricted_action",
                            "invalid_auth", "account_inactive", "token_revoked", "missing_scope"})

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class CardRecord:
    channel: str = ""
    ts: str = ""
    version: int = 0  # the run version the card shows
    edited_at: float = 0.0  # wall-clock seconds of the last post or edit
    audit_posted: int = 0  # audit entries already in the thread
    thread_at: float = 0.0
    response_url: str = ""  # the slash command's, to say so when the card cannot be posted
    undeliverable: str = ""  # the Slack error that stopped posting, until the next event


class CardStore:
    """The card bookkeeping in Redis: ``<prefix>:slack:card:<run_id>`` (hash) and its lock."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco") -> None:
        self._client = client
        self._prefix = prefix
        self._unlock = client.register_script(_UNLOCK)

    def key(self, run_id: str) -> str:
        return f"{self._prefix}:slack:card:{run_id}"

    def _lock_key(self, run_id: str) -> str:
        return f"{self._prefix}:slack:card-lock:{run_id}"

    async def get(self, run_id: str) -> CardRecord:
        raw = cast(dict[str, str], await self._client.hgetall(self.key(run_id)))  # decode_responses client
        return CardRecord(
            channel=raw.get("channel", ""), ts=raw.get("ts", ""), version=int(raw.get("version", 0)),
            edited_at=float(raw.get("edited_at", 0)), audit_posted=int(raw.get("audit_posted", 0)),
            thread_at=float(raw.get("thread_at", 0)), response_url=raw.get("response_url", ""),
            undeliverable=raw.get("undeliverable", ""),
        )

    async def update(self, run_id: str, **fields: str | int | float) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(run_id), mapping=cast(Any, fields))
            pipe.expire(self.key(run_id), CARD_TTL_S)
            await pipe.execute()

    async def keep_response_url(self, run_id: str, response_url: str) -> None:
        """The first response_url kept for a card stays (one round trip: no read first)."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hsetnx(self.key(run_id), "response_url", response_url)
            pipe.expire(self.key(run_id), CARD_TTL_S)
            await pipe.execute()

    async def try_lock(self, run_id: str, token: str) -> bool:
        return bool(await self._client.set(self._lock_key(run_id), token, nx=True, px=LOCK_TTL_MS))

    async def unlock(self, run_id: str, token: str) -> None:
        await self._unlock(keys=[self._lock_key(run_id)], args=[token])


class Again(Exception):
    """Flush later: ``delay`` seconds from now (coalescing, another replica busy, a Slack error)."""

    def __init__(self, delay: float, *, failure: bool = False) -> None:
        super().__init__(f"again in {delay:.1f} s")
        self.delay = delay
        self.failure = failure


class CardPublisher:
    def __init__(
        self, *, client: AsyncWebClient, store: CardStore, runs: RedisRunRepository,
        clusters: Mapping[str, ManagedCluster], min_interval_s: float = 1.0,
        wall_clock: Callable[[], float] = time.time, foreground: Foreground | None = None,
    ) -> None:
        self._client = client
        self._foreground = foreground or Foreground()
        self._store = store
        self._runs = runs
        self._clusters = clusters
        self._interval = min_interval_s
        self._now = wall_clock
        self._dirty: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_FLUSHES)
        self.debounce_s = DEBOUNCE_S

    # -- scheduling ------------------------------------------------------------------------------
    async def on_run_event(self, event: RunEvent) -> None:
        """A ``RunEventBus`` listener: only marks the card dirty, so the bus is never held up."""
        self.request(event.run_id)

    def request(self, run_id: str) -> None:
        self._dirty.add(run_id)
        task = self._tasks.get(run_id)
        if task is None or task.done():
            self._tasks[run_id] = asyncio.create_task(self._flush_loop(run_id), name=f"card-{run_id}")

    async def catch_up(self, recent: int = 50) -> None:
        """At start: re-render active and recent runs, in case a crashed replica left a card behind."""
        try:
            run_ids = dict.fromkeys([*await self._runs.active(), *await self._runs.recent(limit=recent)])
        except StoreUnavailable as exc:
            log.warning("run cards not caught up at start (%s); the next event renders them", exc)
            return
        for run_id in run_ids:
            self.request(run_id)

    async def idle(self) -> None:
        """Wait until no flush is pending (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _flush_loop(self, run_id: str) -> None:
        try:
            await self._flush_until_clean(run_id)
        finally:
            if self._tasks.get(run_id) is asyncio.current_task():
                del self._tasks[run_id]  # a bot that runs for months must not keep one entry per run

    async def _flush_until_clean(self, run_id: str) -> None:
        failures = 0
        await asyncio.sleep(self.debounce_s)
        while run_id in self._dirty:
            await self._foreground.quiet_moment()  # acks first: bot.foreground
            self._dirty.discard(run_id)
            try:
                async with self._slots, asyncio.timeout(FLUSH_TIMEOUT_S):
                    await self.flush(run_id)
                failures = 0
            except Again as again:
                failures = failures + 1 if again.failure else failures
                if failures > MAX_FAILURES:
                    log.error("card of %s: giving up after %d failures; the next run event retries", run_id, failures)
                    return
                self._dirty.add(run_id)
                await asyncio.sleep(again.delay)
            except (StoreUnavailable, RedisError, OSError, TimeoutError) as exc:
                failures += 1
                log.warning("card of %s not flushed (%s: %s); retrying", run_id, type(exc).__name__, exc)
                if failures > MAX_FAILURES:
                    return
                self._dirty.add(run_id)
                await asyncio.sleep(min(MAX_BACKOFF_S, 2.0 ** failures))
            except Exception:
                log.exception("card of %s: unexpected error; the next run event retries", run_id)
                return

    # -- one flush -------------------------------------------------------------------------------
    async def flush(self, run_id: str) -> None:
        """Bring the card (and its thread) up to the run's stored state, or raise Again."""
        record = await self._store.get(run_id)
        wait = record.edited_at + self._interval - self._now()
        if wait > 0:
            raise Again(wait)
        token = secrets.token_hex(8)
        if not await self._store.try_lock(run_id, token):
            raise Again(self._interval / 2)  # another replica is flushing; look again after it
        try:
            await self._flush_locked(run_id)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await self._store.unlock(run_id, token)

    async def _flush_locked(self, run_id: str) -> None:
        loaded = await self._runs.load(run_id)
        if loaded is None:
            return
        run, version = loaded
        record = await self._store.get(run_id)  # again, under the lock: another replica may have moved it
        # The cluster's channel first, wherever the command was typed (another channel, a DM): the
        # people who watch the cluster must see every run on it. The requester is told where it is.
        channel = record.channel or self._channel_of(run) or run.channel
        if not channel:
            return  # a console run on a cluster with no channel: nothing to show in Slack
        if not record.ts or version > record.version:
            wait = record.edited_at + self._interval - self._now()
            if wait > 0:
                raise Again(wait)
            record = await self._render(run, version, record, channel)
        await self._post_thread(run, record)

    def _channel_of(self, run: Run) -> str | None:
        cluster = self._clusters.get(run.cluster)
        return cluster.channel if cluster else None

    async def _render(self, run: Run, version: int, record: CardRecord, channel: str) -> CardRecord:
        text, blocks = fallback_text(run), run_card_blocks(run)
        try:
            if not record.ts:
                response = await self._client.chat_postMessage(channel=channel, text=text, blocks=blocks)
                ts, channel = str(response["ts"]), str(response.get("channel") or channel)
            else:
                ts = record.ts
                await self._client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            if await self._slack_failed(run, record, exc, channel):
                return record  # no retry fixes it: the next run event tries again
            raise Again(_retry_after(exc), failure=True) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("card of %s: Slack unreachable (%s); retrying", run.id, type(exc).__name__)
            raise Again(2.0, failure=True) from exc
        now = self._now()
        await self._store.update(run.id, channel=channel, ts=ts, version=version, edited_at=now, undeliverable="")
        return CardRecord(channel=channel, ts=ts, version=version, edited_at=now, audit_posted=record.audit_posted,
                          thread_at=record.thread_at, response_url=record.response_url)

    async def _post_thread(self, run: Run, record: CardRecord) -> None:
        """Per-step details as thread replies, from the audit stream: exactly what happened, once."""
        if not record.ts:
            return
        entries = await self._runs.audit(run.id)
        if len(entries) <= record.audit_posted:
            return
        wait = record.thread_at + THREAD_INTERVAL_S - self._now()
        if wait > 0 and not run.state.terminal:
            raise Again(wait)
        lines = [line for e in entries[record.audit_posted:]
                 if (line := thread_line(e.action, e.actor, e.step_id, e.detail, e.at)) is not None]
        if lines:
            try:
                await self._client.chat_postMessage(channel=record.channel, thread_ts=record.ts,
                                                    text="\n".join(lines)[:3900])
            except SlackApiError as exc:
                raise Again(_retry_after(exc), failure=True) from exc
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise Again(2.0, failure=True) from exc
        await self._store.update(run.id, audit_posted=len(entries), thread_at=self._now())

    async def _slack_failed(self, run: Run, record: CardRecord, exc: SlackApiError, channel: str) -> bool:
        """Log the error; True when it is permanent (after telling the requester, once)."""
        error = slack_error(exc)
        log.warning("card of %s: Slack answered %s", run.id, error)
        if error not in CHANNEL_ERRORS:
            return False
        await self._store.update(run.id, undeliverable=error)
        if record.response_url and not record.undeliverable:
            # The requester would otherwise see nothing: say where the run is and how to fix it.
            hint = f"invite the app to <#{channel}> (/invite)" if error == "not_in_channel" else f"Slack said {error}"
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, SlackApiError):
                await AsyncWebhookClient(record.response_url).send(
                    text=f"I cannot post the card of run {run.id}: {hint}. "
                         f"`/kafka run {run.id}` shows it meanwhile.", response_type="ephemeral")
        return True


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code (``ratelimited``, ``not_in_channel``), or the HTTP status for a non-JSON answer."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {getattr(exc.response, 'status_code', '?')}"


def _retry_after(exc: SlackApiError) -> float:
    """Slack's Retry-After when it gave one (a 429 the SDK's retries did not outlast), else a pause."""
    headers = getattr(exc.response, "headers", None) or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            with contextlib.suppress(ValueError):
                return min(MAX_BACKOFF_S, max(1.0, float(raw)))
    return 2.0
