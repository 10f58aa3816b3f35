"""RunStore against a real redis-server: CAS, atomic audit, indexes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.store import Event, JsonText, RunExists, RunStore, StoreError, VersionConflict
from bot.store.codec import new_op_token

# Until tests/conftest.py registers it for the whole suite; harmless once it does.
pytest_plugins = ["tests.fixtures.redis_server"]


EVENTS = "test:run-events"


def doc(state: str, **extra: Any) -> dict[str, Any]:
    return {"state": state, "steps": [{"id": "s1", "title": "Pre-flight ✅"}], **extra}


async def test_create_then_load_returns_document_at_version_1(store: RunStore) -> None:
    """A created run loads back unchanged at version 1."""
    assert await store.create_run("r-1", "prod-east", doc("planned")) == 1
    assert await store.load_run("r-1") == (doc("planned"), 1)


async def test_load_missing_run_returns_none(store: RunStore) -> None:
    """Loading an unknown run id gives None, not an error."""
    assert await store.load_run("r-nope") is None


async def test_create_existing_run_fails_and_keeps_original(store: RunStore) -> None:
    """Creating a run id twice raises RunExists (a VersionConflict) and keeps the first document."""
    await store.create_run("r-1", "prod-east", doc("planned"))
    with pytest.raises(RunExists) as err:
        await store.create_run("r-1", "prod-west", doc("other"))
    assert isinstance(err.value, VersionConflict)
    assert "already exists" in str(err.value)
    assert await store.load_run("r-1") == (doc("planned"), 1)
    assert await store.active_runs("prod-west") == []


async def test_save_with_current_version_bumps_version(store: RunStore) -> None:
    """save_run with the stored version writes the document and returns version + 1."""
    await store.create_run("r-1", "c1", doc("planned"))
    assert await store.save_run("r-1", doc("awaiting_approval"), expected_version=1) == 2
    assert await store.save_run("r-1", doc("running"), expected_version=2) == 3
    assert await store.load_run("r-1") == (doc("running"), 3)


async def test_conflicting_save_changes_nothing(store: RunStore) -> None:
    """A save with a stale version raises VersionConflict and leaves document, version and audit untouched."""
    await store.create_run("r-1", "c1", doc("planned"))
    await store.save_run("r-1", doc("running"), expected_version=1, audit={"to": "running"})
    with pytest.raises(VersionConflict) as err:
        await store.save_run("r-1", doc("aborted"), expected_version=1, audit={"to": "aborted"}, active=False)
    assert (err.value.expected, err.value.actual) == (1, 2)
    assert "version 2, not 1" in str(err.value)
    assert await store.load_run("r-1") == (doc("running"), 2)
    assert await store.audit_entries("r-1") == [{"to": "running"}]
    assert await store.active_runs() == ["r-1"]


async def test_save_of_missing_run_is_a_conflict(store: RunStore) -> None:
    """Saving a run that was never created raises VersionConflict with no current version."""
    with pytest.raises(VersionConflict) as err:
        await store.save_run("r-ghost", doc("running"), expected_version=1)
    assert err.value.actual is None
    assert "does not exist" in str(err.value)


async def test_audit_is_appended_with_the_save(store: RunStore) -> None:
    """Each save's audit entry lands in the run's stream, oldest first, alongside the new version."""
    await store.create_run("r-1", "c1", doc("planned"), audit={"who": "U1", "to": "planned"})
    await store.save_run("r-1", doc("running"), expected_version=1, audit={"who": "U2", "to": "running"})
    await store.save_run("r-1", doc("running", note="no audit"), expected_version=2)
    await store.append_audit("r-1", {"who": "U3", "what": "unauthorized click"})
    assert await store.audit_entries("r-1") == [
        {"who": "U1", "to": "planned"},
        {"who": "U2", "to": "running"},
        {"who": "U3", "what": "unauthorized click"},
    ]


async def test_audit_entry_and_version_are_one_atomic_step(store: RunStore, redis_client: aioredis.Redis) -> None:
    """The stream entry records the version it belongs to, so audit and record can never disagree."""
    await store.create_run("r-1", "c1", doc("planned"))
    await store.save_run("r-1", doc("running"), expected_version=1, audit={"to": "running"})
    records = await redis_client.xrange(store.keys.audit("r-1"))
    assert [fields for _, fields in records or []] == [{"entry": '{"to":"running"}', "version": "2"}]


async def test_concurrent_saves_with_same_version_have_one_winner(redis_url: str) -> None:
    """Of many replicas saving from the same version at once, exactly one wins; the others conflict."""
    from bot.store import connect

    clients = [await connect(redis_url) for _ in range(4)]
    try:
        stores = [RunStore(c) for c in clients]
        await stores[0].create_run("r-1", "c1", doc("planned"))
        results = await asyncio.gather(
            *(s.save_run("r-1", doc(f"by-{i}"), expected_version=1, audit={"by": i}) for i, s in enumerate(stores)),
            return_exceptions=True,
        )
        winners = [i for i, r in enumerate(results) if r == 2]
        assert len(winners) == 1, results
        assert all(isinstance(r, VersionConflict) for r in results if r != 2)
        assert await stores[0].load_run("r-1") == (doc(f"by-{winners[0]}"), 2)
        assert await stores[0].audit_entries("r-1") == [{"by": winners[0]}]
    finally:
        for c in clients:
            await c.aclose()


async def test_retried_save_is_recognised_not_reported_as_conflict(
        store: RunStore, redis_client: aioredis.Redis) -> None:
    """A save replayed with the same op token (reply lost, redis-py retried) succeeds once, not twice."""
    await store.create_run("r-1", "c1", doc("planned"))
    op = new_op_token()
    run_key, audit_key = store.keys.run("r-1"), store.keys.audit("r-1")
    keys = [run_key, audit_key, store.keys.active_all, store.keys.active_cluster("c1")]
    args: list[str | int] = ["r-1", '{"state":"running"}', 1, '{"to":"running"}', "1", op, EVENTS, "h"]
    async with subscribed(redis_client) as heard:
        assert await store._save(keys=keys, args=args) == [1, 2]
        assert await store._save(keys=keys, args=args) == [1, 2]  # the replay
        assert await store.load_run("r-1") == ({"state": "running"}, 2)
        assert await store.audit_entries("r-1") == [{"to": "running"}]
        assert await heard(1) == ['h\n{"state":"running"}']  # the replay announces nothing new


async def test_each_write_publishes_its_event_and_a_refused_one_does_not(
        store: RunStore, redis_client: aioredis.Redis) -> None:
    """The event is published by the write itself: header, newline, the document as written;
    a conflicting save and a duplicate create publish nothing, and a write without one is silent."""
    async with subscribed(redis_client) as heard:
        await store.create_run("r-1", "c1", doc("planned"), event=Event(EVENTS, '{"n":1}'))
        await store.save_run("r-1", doc("running"), expected_version=1, event=Event(EVENTS, '{"n":2}'))
        with pytest.raises(VersionConflict):
            await store.save_run("r-1", doc("paused"), expected_version=1, event=Event(EVENTS, '{"n":3}'))
        with pytest.raises(RunExists):
            await store.create_run("r-1", "c1", doc("planned"), event=Event(EVENTS, '{"n":4}'))
        await store.save_run("r-1", doc("succeeded"), expected_version=2)
        messages = await heard(2)
    assert [m.split("\n", 1)[0] for m in messages] == ['{"n":1}', '{"n":2}']
    assert [json.loads(m.split("\n", 1)[1]) for m in messages] == [doc("planned"), doc("running")]


def test_an_event_needs_a_channel_and_a_one_line_header() -> None:
    """The header is the message's first line, so one with a newline would corrupt the message."""
    with pytest.raises(ValueError, match="one-line header"):
        Event(EVENTS, "two\nlines")
    with pytest.raises(ValueError, match="channel"):
        Event("", "h")


@contextlib.asynccontextmanager
async def subscribed(client: aioredis.Redis) -> AsyncIterator[Callable[[int], Awaitable[list[str]]]]:
    """Listen on EVENTS; ``heard(n)`` waits for n messages, then checks for stragglers briefly."""
    pubsub = client.pubsub()
    await pubsub.subscribe(EVENTS)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation

    async def heard(n: int) -> list[str]:
        messages: list[str] = []
        deadline = asyncio.get_running_loop().time() + 3
        while asyncio.get_running_loop().time() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                messages.append(str(message["data"]))
            elif len(messages) >= n:
                break
        return messages

    try:
        yield heard
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py


async def test_active_index_add_and_remove(store: RunStore) -> None:
    """Created runs are active globally and per cluster; a save with active=False removes them."""
    await store.create_run("r-1", "c1", doc("planned"))
    await store.create_run("r-2", "c2", doc("planned"))
    await store.create_run("r-3", "c1", doc("planned"))
    assert await store.active_runs() == ["r-1", "r-2", "r-3"]
    assert await store.active_runs("c1") == ["r-1", "r-3"]
    await store.save_run("r-1", doc("succeeded"), expected_version=1, active=False)
    assert await store.active_runs() == ["r-2", "r-3"]
    assert await store.active_runs("c1") == ["r-3"]
    assert await store.active_runs("c2") == ["r-2"]
    # Saving a finished run as active again puts it back in its original (creation) position.
    await store.save_run("r-1", doc("paused"), expected_version=2, active=True)
    assert await store.active_runs("c1") == ["r-1", "r-3"]


async def test_recent_runs_newest_first_including_finished(store: RunStore) -> None:
    """recent_runs lists runs newest first, finished ones too, honouring cluster and limit."""
    for i, cluster in enumerate(["c1", "c2", "c1", "c1"]):
        await store.create_run(f"r-{i}", cluster, doc("planned"))
    await store.save_run("r-2", doc("failed"), expected_version=1, active=False)
    assert await store.recent_runs() == ["r-3", "r-2", "r-1", "r-0"]
    assert await store.recent_runs("c1", limit=2) == ["r-3", "r-2"]
    assert await store.recent_runs(limit=0) == []


async def test_recent_index_is_capped(redis_client: aioredis.Redis) -> None:
    """The recent index keeps only the newest recent_cap runs; the records themselves stay."""
    store = RunStore(redis_client, recent_cap=2)
    for i in range(4):
        await store.create_run(f"r-{i}", "c1", doc("planned"))
    assert await store.recent_runs(limit=10) == ["r-3", "r-2"]
    assert await store.recent_runs("c1", limit=10) == ["r-3", "r-2"]
    assert await store.active_runs() == ["r-0", "r-1", "r-2", "r-3"]
    assert await store.load_run("r-0") is not None


async def test_prefixes_isolate_stores(redis_client: aioredis.Redis) -> None:
    """Two prefixes on one Redis see neither each other's runs nor indexes."""
    a, b = RunStore(redis_client, prefix="kco-a"), RunStore(redis_client, prefix="kco-b")
    await a.create_run("r-1", "c1", doc("planned"))
    assert await b.load_run("r-1") is None
    assert await b.active_runs() == []


async def test_non_json_documents_are_rejected_before_writing(store: RunStore) -> None:
    """Documents that are not JSON objects fail with TypeError/ValueError and write nothing."""
    with pytest.raises(TypeError):
        await store.create_run("r-1", "c1", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await store.create_run("r-1", "c1", {"lag": float("nan")})
    with pytest.raises(TypeError):  # text is taken only when marked as encoded JSON
        await store.create_run("r-1", "c1", '{"state":"planned"}')  # type: ignore[arg-type]
    assert await store.load_run("r-1") is None


async def test_documents_already_encoded_are_stored_as_they_are(store: RunStore) -> None:
    """JsonText (a caller's own fast encoder) is written unchanged, for runs and audit entries alike."""
    await store.create_run("r-1", "c1", JsonText('{"state":"planned"}'), audit=[JsonText('{"to":"planned"}')])
    await store.save_run("r-1", JsonText('{"state":"running"}'), expected_version=1,
                         audit=JsonText('{"to":"running"}'))
    assert await store.load_run("r-1") == ({"state": "running"}, 2)
    assert await store.audit_entries("r-1") == [{"to": "planned"}, {"to": "running"}]


async def test_corrupt_record_raises_store_error(store: RunStore, redis_client: aioredis.Redis) -> None:
    """A record that is not a JSON object raises StoreError naming the run, not a bare JSON error."""
    await store.create_run("r-1", "c1", doc("planned"))
    await redis_client.hset(store.keys.run("r-1"), "doc", "{broken")
    with pytest.raises(StoreError, match="run r-1 is not valid JSON"):
        await store.load_run("r-1")


async def test_ids_with_whitespace_are_refused(store: RunStore) -> None:
    """Run ids and cluster names with whitespace or empty are refused before touching Redis."""
    with pytest.raises(ValueError, match="whitespace"):
        await store.create_run("r 1", "c1", doc("planned"))
    with pytest.raises(ValueError, match="non-empty"):
        await store.create_run("r-1", "", doc("planned"))


async def test_client_without_decoded_responses_is_refused(redis_url: str) -> None:
    """A bytes-returning client is refused at construction with a hint to use connect()."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RunStore(client)
    finally:
        await client.aclose()
