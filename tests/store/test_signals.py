"""Signals between replicas, against a real redis-server."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot.store import Signals, connect
from tests.fixtures.waiting import wait_for

pytest_plugins = ["tests.fixtures.redis_server"]


async def test_signals_cross_connections_once_and_in_order(redis_url: str) -> None:
    """Signals published on one connection are taken on another, in order, and only once."""
    sender_client, driver_client = await connect(redis_url), await connect(redis_url)
    try:
        sender, driver = Signals(sender_client), Signals(driver_client)
        for i in range(5):
            await sender.publish("r-1", {"kind": "approve", "n": i})
        await sender.publish("r-2", {"kind": "abort"})
        assert await driver.take("r-1") == [{"kind": "approve", "n": i} for i in range(5)]
        assert await driver.take("r-1") == []
        assert await sender.take("r-1") == []
        assert await sender.take("r-2") == [{"kind": "abort"}]
    finally:
        await sender_client.aclose()
        await driver_client.aclose()


async def test_concurrent_takers_never_share_a_signal(redis_url: str) -> None:
    """Two replicas taking while signals arrive together receive every signal exactly once, each in order."""
    clients = [await connect(redis_url) for _ in range(3)]
    try:
        publisher, taker_a, taker_b = (Signals(c) for c in clients)
        received: dict[str, list[int]] = {"a": [], "b": []}
        done = asyncio.Event()

        async def consume(name: str, signals: Signals) -> None:
            while not done.is_set():
                received[name].extend(s["n"] for s in await signals.take("r-1"))
                await asyncio.sleep(0)

        async def produce() -> None:
            for i in range(100):
                await publisher.publish("r-1", {"n": i})
            # Let the consumers drain what is left before stopping them.
            await wait_for(
                lambda: len(received["a"]) + len(received["b"]) == 100,
                timeout=5,
                interval=0.01,
                message="both takers to drain 100 signals",
            )
            done.set()

        await asyncio.gather(produce(), consume("a", taker_a), consume("b", taker_b))
        assert sorted(received["a"] + received["b"]) == list(range(100))
        for name in ("a", "b"):
            assert received[name] == sorted(received[name]), f"taker {name} saw signals out of order"
    finally:
        for c in clients:
            await c.aclose()


async def test_publish_announces_run_on_channel(redis_client: aioredis.Redis, redis_url: str) -> None:
    """Each published signal also announces its run id on the notify channel, to wake the driver."""
    signals = Signals(redis_client)
    listener = await connect(redis_url)
    pubsub = listener.pubsub()
    try:
        await pubsub.subscribe(signals.channel)
        await wait_for(
            lambda: pubsub.get_message(timeout=0.1), timeout=3, message="the subscribe confirmation"
        )
        await signals.publish("r-9", {"kind": "approve"})
        message = await wait_for(
            lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1),
            timeout=3,
            message="the notify message for r-9",
        )
        assert message["data"] == "r-9"
        assert await signals.take("r-9") == [{"kind": "approve"}]
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
        await listener.aclose()
