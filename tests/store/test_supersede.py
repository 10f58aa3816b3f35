"""Supersessions.create_run_superseding against a real redis-server: the new run, the superseded run's
last write and the lock's hand-over happen in one atomic step, or nothing happens at all."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from bot.store import ClusterHeld, ClusterLock, Event, JsonText, RunExists, RunStore, Supersessions, VersionConflict

pytestmark = pytest.mark.timeout(30)
TOKEN = "fencing_token"
EVENTS = "test:run-events"


def doc(run_id: str, state: str) -> JsonText:
    return JsonText(json.dumps({"id": run_id, "state": state}, separators=(",", ":")))


async def everything(client: aioredis.Redis) -> dict[str, object]:
    """Every key with its value's fingerprint: what a refused write must leave exactly as it was."""
    result: dict[str, object] = {}
    for key in sorted(await client.keys("*")):
        kind = await client.type(key)
        if kind == "hash":
            result[key] = await client.hgetall(key)
        elif kind == "string":
            result[key] = await client.get(key)
        elif kind == "zset":
            result[key] = await client.zrange(key, 0, -1)
        elif kind == "stream":
            result[key] = await client.xlen(key)
    return result


@pytest.fixture
async def paused(store: RunStore) -> int:
    """Run r-old, paused, holding cluster c1 (version 3 after two saves)."""
    token = await store.create_run_holding_lock("r-old", "c1", doc("r-old", "running"), token_field=TOKEN)
    version = await store.save_run("r-old", doc("r-old", "waiting"), expected_version=1)
    await store.save_run("r-old", doc("r-old", "paused"), expected_version=version)
    return token


async def test_the_new_run_takes_the_lock_and_the_old_one_ends_in_the_same_write(
        store: RunStore, lock: ClusterLock, redis_client: aioredis.Redis, paused: int) -> None:
    """After one call: the new run is stored (with a larger token, which fences the old one), active and
    audited; the old run has its finished document at version 4, is no longer active and got its audit
    entry; both writes were published, the old run's first."""
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(EVENTS)
    events = (Event(EVENTS, '{"run_id":"r-undo"}'), Event(EVENTS, '{"run_id":"r-old"}'))
    token = await Supersessions(store).create_run_superseding(
        "r-undo", "c1", doc("r-undo", "awaiting_approval"), token_field=TOKEN, audit=[{"a": "requested"}],
        superseded_id="r-old", superseded_document=doc("r-old", "aborted"), superseded_version=3,
        superseded_audit=[{"a": "abort"}], events=events)
    assert token > paused
    assert await lock.holder("c1") == "r-undo" and await lock.check_token("c1", token)
    assert not await lock.check_token("c1", paused), "the old run's token no longer passes"
    assert await store.load_run("r-undo") == ({TOKEN: token, "id": "r-undo", "state": "awaiting_approval"}, 1)
    assert await store.load_run("r-old") == ({"id": "r-old", "state": "aborted"}, 4)
    assert await store.active_runs("c1") == ["r-undo"]
    assert await store.recent_runs("c1") == ["r-undo", "r-old"]
    assert await store.audit_entries("r-undo") == [{"a": "requested"}]
    assert (await store.audit_entries("r-old"))[-1] == {"a": "abort"}
    heard = []
    while len(heard) < 2:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        if message is not None:
            heard.append(str(message["data"]).split("\n", 1)[0])
    assert heard == ['{"run_id":"r-old"}', '{"run_id":"r-undo"}']
    await pubsub.aclose()


@pytest.mark.parametrize(("case", "error"), [
    ("another holder", ClusterHeld), ("moved", VersionConflict), ("taken id", RunExists), ("no old run", ClusterHeld),
])
async def test_a_refused_supersession_writes_nothing(
        store: RunStore, lock: ClusterLock, redis_client: aioredis.Redis, paused: int, case: str,
        error: type[Exception]) -> None:
    """The lock held by another run, the old run moved since it was judged, the new id taken, or an old
    run that does not exist (so cannot hold the lock): the error says which, and no key changed."""
    superseded, version, new_id = "r-old", 3, "r-undo"
    if case == "another holder":
        await lock.release("c1", "r-old")
        assert await lock.acquire("c1", "r-other") is not None
    elif case == "moved":
        version = 2
    elif case == "taken id":
        await store.create_run("r-undo", "c2", doc("r-undo", "planned"))
    else:
        superseded = "r-ghost"
    before = await everything(redis_client)
    with pytest.raises(error):
        await Supersessions(store).create_run_superseding(
            new_id, "c1", doc(new_id, "awaiting_approval"), token_field=TOKEN, audit=[{"a": "requested"}],
            superseded_id=superseded, superseded_document=doc(superseded, "aborted"), superseded_version=version,
            superseded_audit=[{"a": "abort"}])
    assert await everything(redis_client) == before


async def test_no_third_run_can_take_the_cluster_during_the_hand_over(
        store: RunStore, lock: ClusterLock, paused: int) -> None:
    """A competitor trying to create its own run on the cluster as fast as it can, around the hand-over:
    every attempt is refused (the old run held the lock, then the new one); it never gets in between."""
    outcomes: list[str] = []
    done = asyncio.Event()

    async def compete() -> None:
        attempt = after = 0
        while after < 3:  # until it has tried three times after the hand-over, whenever that came
            after += done.is_set()
            attempt += 1
            try:
                await store.create_run_holding_lock(f"r-third{attempt}", "c1", doc("r-third", "running"),
                                                    token_field=TOKEN)
                outcomes.append("won")
            except ClusterHeld as held:
                outcomes.append(held.holder)
            await asyncio.sleep(0)

    competitor = asyncio.create_task(compete())
    await asyncio.sleep(0.01)
    await Supersessions(store).create_run_superseding(
        "r-undo", "c1", doc("r-undo", "awaiting_approval"), token_field=TOKEN, audit=[],
        superseded_id="r-old", superseded_document=doc("r-old", "aborted"), superseded_version=3, superseded_audit=[])
    done.set()
    await competitor
    assert "won" not in outcomes
    assert set(outcomes) == {"r-old", "r-undo"}
    assert outcomes.index("r-undo") > outcomes.index("r-old")


async def test_asking_twice_supersedes_once(store: RunStore, lock: ClusterLock, paused: int) -> None:
    """A second request for the same hand-over (a double click that got through twice) is refused as
    RunExists: the lock keeps the first token and the old run was written once."""
    supersessions = Supersessions(store)
    args = {"token_field": TOKEN, "audit": [{"a": "requested"}], "superseded_id": "r-old",
            "superseded_document": doc("r-old", "aborted"), "superseded_version": 3, "superseded_audit": []}
    first = await supersessions.create_run_superseding("r-undo", "c1", doc("r-undo", "x"), **args)  # type: ignore[arg-type]
    with pytest.raises(RunExists):
        await supersessions.create_run_superseding("r-undo", "c1", doc("r-undo", "x"), **args)  # type: ignore[arg-type]
    assert await lock.check_token("c1", first)
    assert (await store.load_run("r-old"))[1] == 4  # type: ignore[index]
