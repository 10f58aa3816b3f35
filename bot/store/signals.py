"""Signals (approve, abort, ...) from whichever replica received the click to the one driving the run.

Durable first: a signal is an entry in a per-run Redis list, so it waits there if the driving
replica is restarting. A pub/sub message on ``Keys.signals_channel`` carrying the run id is sent
alongside as a wake-up hint only; a subscriber that misses it loses nothing, it just notices the
signal on its next ``take``.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from bot.store.codec import from_json, require_decoded, to_json
from bot.store.errors import translate_errors
from bot.store.keys import Keys

# KEYS: signals list, ARGV: channel, run_id, signal JSON. Push and notify in one step so a woken
# subscriber always finds the signal.
_PUBLISH = """
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
"""

# KEYS: signals list. Read and clear in one step: two replicas taking at once never both get
# the same signal.
_TAKE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
if #items > 0 then redis.call('DEL', KEYS[1]) end
return items
"""


class Signals:
    """A durable per-run inbox of signals (JSON objects), consumed in order."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco") -> None:
        require_decoded(client)
        self._client = client
        self._keys = Keys(prefix)
        self._publish = client.register_script(_PUBLISH)
        self._take = client.register_script(_TAKE)

    @property
    def channel(self) -> str:
        """Pub/sub channel announcing the run id of each new signal (subscribe to wake up)."""
        return self._keys.signals_channel

    async def publish(self, run_id: str, signal: dict[str, Any]) -> None:
        raw = to_json(signal, "signal")
        with translate_errors(self._client):
            await self._publish(keys=[self._keys.signals(run_id)], args=[self.channel, run_id, raw])

    async def take(self, run_id: str) -> list[dict[str, Any]]:
        """Pop every pending signal for ``run_id``, oldest first, atomically.

        At-most-once: once taken, a signal is gone even if the caller crashes before acting on
        it. The engine tolerates that (an approval lost this way leaves the step waiting with
        its nonce still valid, and the human clicks again).
        """
        with translate_errors(self._client):
            items = await self._take(keys=[self._keys.signals(run_id)])
        return [from_json(str(item), f"signal for run {run_id}") for item in items]
