"""RunStore.create_run_holding_lock against a real redis-server: the run and its cluster's lock are
written in one atomic step, or nothing is written at all."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from bot.store import ClusterHeld, ClusterLock, Event, JsonText, RunExists, RunStore

EVENTS = "test:run-events"
TOKEN = "fencing_token"


def doc(run_id: str, state: str = "running") -> JsonText:
    # As the adapter encodes a run: compact JSON, without the token field.
    return JsonText(json.dumps({"id": run_id, "state": state, "params": {"note": "café, \"quoted\""}},
                               separators=(",", ":"), ensure_ascii=False))


async def everything(client: aioredis.Redis) -> dict[str, object]:
    """Every key with its type: what a refused create must leave exactly as it was."""
    keys = sorted(await client.keys("*"))
    return {k: await client.type(k) for k in keys}


async def test_the_run_is_stored_holding_its_cluster_and_carries_the_token(
        store: RunStore, lock: ClusterLock) -> None:
    """The token returned is the lock's current token, and the stored document has it as a field
    beside everything it was given, unchanged."""
    token = await store.create_run_holding_lock("r-1", "c1", doc("r-1"), token_field=TOKEN, audit={"to": "running"})
    assert await lock.holder("c1") == "r-1"
    assert await lock.check_token("c1", token)
    loaded = await store.load_run("r-1")
    assert loaded == ({TOKEN: token, "id": "r-1", "state": "running", "params": {"note": "café, \"quoted\""}}, 1)
    assert await store.audit_entries("r-1") == [{"to": "running"}]
    assert await store.active_runs("c1") == ["r-1"]


async def test_tokens_keep_increasing_with_the_lock_acquired_either_way(store: RunStore, lock: ClusterLock) -> None:
    """The one-step create and ClusterLock.acquire share the cluster's fence counter: each new
    holder's token is larger than every earlier one."""
    first = await lock.acquire("c1", "r-0")
    assert first is not None
    await lock.release("c1", "r-0")
    second = await store.create_run_holding_lock("r-1", "c1", doc("r-1"), token_field=TOKEN)
    await lock.release("c1", "r-1")
    third = await store.create_run_holding_lock("r-2", "c1", doc("r-2"), token_field=TOKEN)
    assert first < second < third
    assert not await lock.check_token("c1", second)


async def test_a_held_cluster_refuses_and_nothing_is_written(
        store: RunStore, lock: ClusterLock, redis_client: aioredis.Redis) -> None:
    """Another run's lock: ClusterHeld names it, and no record, audit entry, index entry, fence
    increment or event exists for the refused run."""
    held = await store.create_run_holding_lock("r-1", "c1", doc("r-1"), token_field=TOKEN)
    before = await everything(redis_client)
    fence = await redis_client.get("kco:fence:c1")
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(EVENTS)
    await pubsub.get_message(timeout=1)
    try:
        with pytest.raises(ClusterHeld) as refused:
            await store.create_run_holding_lock("r-2", "c1", doc("r-2"), token_field=TOKEN, audit={"to": "running"},
                                                event=Event(channel=EVENTS, header="r-2"))
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
    assert (refused.value.cluster, refused.value.holder) == ("c1", "r-1")
    assert await everything(redis_client) == before
    assert await redis_client.get("kco:fence:c1") == fence
    assert await store.load_run("r-2") is None
    assert await lock.check_token("c1", held)


async def test_a_taken_run_id_refuses_without_taking_the_cluster(
        store: RunStore, lock: ClusterLock, redis_client: aioredis.Redis) -> None:
    """RunExists when the id is taken, even on a free cluster: the cluster stays free."""
    await store.create_run("r-1", "c1", {"state": "planned"})
    before = await everything(redis_client)
    with pytest.raises(RunExists):
        await store.create_run_holding_lock("r-1", "c2", doc("r-1"), token_field=TOKEN)
    assert await lock.holder("c2") is None
    assert await everything(redis_client) == before
    assert await store.load_run("r-1") == ({"state": "planned"}, 1)


async def test_the_event_carries_the_document_as_stored(store: RunStore, redis_client: aioredis.Redis) -> None:
    """Subscribers get the document with its token, exactly as the record holds it."""
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(EVENTS)
    await pubsub.get_message(timeout=1)
    try:
        token = await store.create_run_holding_lock("r-1", "c1", doc("r-1"), token_field=TOKEN,
                                                    event=Event(channel=EVENTS, header="created r-1"))
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
    assert message is not None
    header, _, body = str(message["data"]).partition("\n")
    assert header == "created r-1"
    assert body == await redis_client.hget("kco:run:r-1", "doc")
    assert json.loads(body)[TOKEN] == token


@pytest.mark.parametrize(
    ("document", "token_field", "error"),
    [
        (JsonText('["not", "an", "object"]'), TOKEN, "non-empty JSON object"),
        (JsonText("{}"), TOKEN, "non-empty JSON object"),
        (doc("r-1"), 'token", "x', "plain field name"),
        (doc("r-1"), "", "plain field name"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_written(
        store: RunStore, redis_client: aioredis.Redis, document: JsonText, token_field: str, error: str) -> None:
    """A document the token cannot be added to, or a field name that would break the JSON, is a
    ValueError saying what is wrong, raised before Redis is touched."""
    with pytest.raises(ValueError, match=error):
        await store.create_run_holding_lock("r-1", "c1", document, token_field=token_field)
    assert await redis_client.keys("*") == []
