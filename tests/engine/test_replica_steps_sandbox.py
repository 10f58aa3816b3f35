"""The replica-move executors on real brokers (the session sandbox, through the real Kafka adapter),
driven step by step as the worker drives them: a drain of broker 1 planned by the bot's planner and
moved back to the exact original replica lists, throttled, then the cleanup steps; and an "abort"
mid-move: a slow batch in flight, then cancel-moves and clear-throttles from that state.

Only a topic of its own moves (the default sandbox's internal topics have RF 3 on 3 brokers, so no
drain of the whole broker fits); the topic is deleted at the end and no throttle is left."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from handlers.ports import ClusterRef
from handlers.steps.base import StepContext
from handlers.steps.registry import REGISTERED
from runbooks.catalogue.replica_steps import (
    CancelMovesArgs,
    ClearThrottlesArgs,
    MoveReplicasArgs,
    PartitionTarget,
    VerifyReplicasArgs,
)
from runbooks.engine.models import Step, StepArgs, StepSpec
from runbooks.rules.reassignment import PartitionMove, ReassignmentRequest
from runbooks.rules.reassignment_batches import batch_moves
from runbooks.rules.reassignment_plan import plan_reassignment
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from tests.fixtures.sandbox import SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(300)]
TOPIC = "replace-steps"
LAYOUT = {0: [0, 1], 1: [1, 2], 2: [2, 0]}
RECORD = b"x" * 8192


def _topic(bootstrap: str, *, create: bool) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        if TOPIC in admin.list_topics():
            admin.delete_topics([TOPIC])
            time.sleep(2)
        if create:
            admin.create_topics({TOPIC: {"assignments": LAYOUT}}, wait_for_metadata=True)
    finally:
        admin.close()
    if not create:
        return
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    try:
        for partition in LAYOUT:
            for _ in range(3 * 1024 * 1024 // len(RECORD)):  # 3 MiB each: more than one fetch
                producer.send(TOPIC, RECORD, partition=partition)
        producer.flush(timeout=60)
    finally:
        producer.close()


class Driver:
    def __init__(self, ctx: StepContext, args: StepArgs) -> None:
        self.ctx = ctx
        self.step = Step(spec=StepSpec(id="s", title="s", args=args))
        self.executor = REGISTERED[args.kind]

    async def run(self, *, seconds: float = 120.0) -> str:
        """Gate, done first, act, then done until it holds: the worker's order."""
        gate = await self.executor.gate(self.ctx, self.step)
        assert gate.ok, gate.reason
        if not (await self.executor.done(self.ctx, self.step)).done:
            observed = await self.executor.observe(self.ctx, self.step)
            self.step = self.step.model_copy(update={"observed": observed})
            await self.executor.act(self.ctx, self.step)
            self.step = self.step.model_copy(update={"applied": True})
        deadline = time.monotonic() + seconds
        while True:
            result = await self.executor.done(self.ctx, self.step)
            assert result.failure is None, result.failure
            if result.done:
                return result.detail
            assert time.monotonic() < deadline, result.detail
            await asyncio.sleep(0.5)


async def test_drain_and_move_back_then_an_abandoned_batch_cleaned_up(sandbox: SandboxInfo) -> None:
    from bot.kafka import KafkaAdminAdapter

    bootstrap = sandbox.bootstrap_servers
    await asyncio.to_thread(_topic, bootstrap, create=True)
    admin = KafkaAdminAdapter(request_timeout_ms=5000, call_deadline_s=15)
    ref = ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster,
                     bootstrap_servers=bootstrap)
    ctx = StepContext(cluster=ref, gateway=None, admin=admin, clock=FakeClock())  # type: ignore[arg-type]
    try:
        layout = await admin.replica_layout(ref, bootstrap)
        mine = tuple(p for p in layout.request().partitions if p.topic == TOPIC)
        originals = tuple(PartitionTarget(topic=p.topic, partition=p.partition, replicas=p.replicas) for p in mine)
        drain = plan_reassignment(ReassignmentRequest(brokers=layout.brokers, partitions=mine, drain=frozenset({1})))
        assert {m.partition for m in drain.moves} == {0, 1}  # broker 1's two replicas, nothing else
        rate = 20 * 1024 * 1024
        for batch in batch_moves(drain.moves):
            await Driver(ctx, MoveReplicasArgs(moves=batch.moves, throttle_bytes_per_s=rate)).run()
        after = {p.partition: p.replicas for p in (await admin.replica_layout(ref, bootstrap)).partitions
                 if p.topic == TOPIC}
        assert all(1 not in replicas for replicas in after.values()), after
        back = [PartitionMove(topic=m.topic, partition=m.partition, old=m.new, new=m.old, leader=m.new[0],
                              size_bytes=m.size_bytes) for m in drain.moves]
        for batch in batch_moves(back):
            await Driver(ctx, MoveReplicasArgs(moves=batch.moves, throttle_bytes_per_s=rate)).run()
        brokers = tuple(sorted({b for m in (*drain.moves, *back) for b in (*m.old, *m.new)}))
        await Driver(ctx, CancelMovesArgs(partitions=originals)).run()
        await Driver(ctx, ClearThrottlesArgs(brokers=brokers, topics=(TOPIC,))).run()
        verified = await Driver(ctx, VerifyReplicasArgs(partitions=originals)).run()
        assert verified == "0 URP, every ISR complete"  # every partition back on its exact original list

        # A batch left in flight (as an abort finds it): 3 MiB at 10 kB/s stays in flight for minutes.
        slow = MoveReplicasArgs(moves=(PartitionMove(topic=TOPIC, partition=2, old=(2, 0), new=(2, 1), leader=2,
                                                     size_bytes=3 * 1024 * 1024),), throttle_bytes_per_s=10_000)
        stuck = Driver(ctx, slow)
        await stuck.executor.act(ctx, stuck.step)
        detail: Any = (await stuck.executor.done(ctx, stuck.step)).detail
        assert "0/1 partitions moved, 1 in flight" in detail, detail
        cancelled = await Driver(ctx, CancelMovesArgs(partitions=originals)).run()
        assert cancelled.endswith(f"cancelled: {TOPIC}-2"), cancelled
        await Driver(ctx, ClearThrottlesArgs(brokers=(0, 1, 2), topics=(TOPIC,))).run()
        assert (await admin.replication_throttles(ref, bootstrap)).empty
        final = {p.partition: p.replicas for p in (await admin.replica_layout(ref, bootstrap)).partitions
                 if p.topic == TOPIC}
        assert final == {p: tuple(r) for p, r in LAYOUT.items()}
    finally:
        try:
            await admin.remove_replication_throttles(ref, bootstrap, [0, 1, 2], [TOPIC])
        finally:
            await admin.close()
            await asyncio.to_thread(_topic, bootstrap, create=False)
