"""Property test: any sequence of saves, with current or stale versions, matches a simple model."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.store import RunStore, VersionConflict, connect

if TYPE_CHECKING:
    from tests.fixtures.redis_server import RedisServer

pytest_plugins = ["tests.fixtures.redis_server"]

_prefixes = itertools.count()


@dataclass
class Model:
    version: int = 1
    doc: dict[str, Any] = field(default_factory=lambda: {"n": 0})
    audit: list[dict[str, Any]] = field(default_factory=list)
    active: bool = True


# (version offset from the current one: 0 = correct, else stale/future; audit?; active?)
operations = st.lists(
    st.tuples(st.sampled_from([0, 0, 0, -1, -2, 1]), st.booleans(), st.booleans()), min_size=1, max_size=12
)


async def _check_sequence(url: str, ops: list[tuple[int, bool, bool]]) -> None:
    client = await connect(url)
    try:
        store = RunStore(client, prefix=f"kco-prop-{next(_prefixes)}")
        await store.create_run("r-1", "c1", {"n": 0})
        model = Model()
        for n, (offset, with_audit, active) in enumerate(ops, start=1):
            document, entry = {"n": n}, ({"op": n} if with_audit else None)
            expected = model.version + offset
            try:
                new_version = await store.save_run(
                    "r-1", document, expected_version=expected, audit=entry, active=active
                )
            except VersionConflict as conflict:
                assert offset != 0, f"save {n} with the current version conflicted"
                assert conflict.actual == model.version
            else:
                assert offset == 0, f"save {n} with version {expected} won over {model.version}"
                assert new_version == model.version + 1
                model.version, model.doc, model.active = new_version, document, active
                if entry is not None:
                    model.audit.append(entry)
            assert await store.load_run("r-1") == (model.doc, model.version)
            assert await store.audit_entries("r-1") == model.audit
            assert (await store.active_runs("c1") == ["r-1"]) is model.active
    finally:
        await client.aclose()


@settings(max_examples=25, deadline=None)
@given(ops=operations)
def test_cas_sequences_match_model(redis_server: RedisServer, ops: list[tuple[int, bool, bool]]) -> None:
    """Only saves with the current version win; losers change neither document, version, audit nor index."""
    redis_server.ensure_running()
    asyncio.run(_check_sequence(redis_server.url, ops))
