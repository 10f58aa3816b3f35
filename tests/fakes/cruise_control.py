"""Strimzi's KafkaRebalance operator and Cruise Control, played over ``FakeRebalances`` and the replicas
of ``FakeStrimzi``, for runs driven through the command service: a new resource gets a proposal, an
approved one moves replicas (remove-brokers: every replica off the brokers; add-brokers: a share onto
them) and becomes Ready, ``stop`` stops it, ``refresh`` recomputes. ``hold``: a Rebalancing one stays
Rebalancing (so a test can abort mid-rebalance)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from runbooks.rules.rebalance import REBALANCE_ANNOTATION, KafkaRebalanceView, OptimizationSummary, RebalanceState
from tests.fakes.rebalances import FakeRebalances
from tests.fakes.strimzi import FakeStrimzi

PROPOSAL = OptimizationSummary(replica_movements=3, leader_movements=1, data_to_move_mb=30.0,
                               balancedness_before=80.0, balancedness_after=95.0)


class FakeCruiseControl:
    def __init__(self, rebalances: FakeRebalances, strimzi: FakeStrimzi) -> None:
        self.rebalances = rebalances
        self.strimzi = strimzi
        self.hold = False
        self.executed: list[str] = []  # names of the rebalances whose moves were applied, in order

    def _move(self, view: KafkaRebalanceView) -> None:
        brokers = sorted(self.strimzi.pods)
        load = {b: sum(b in p.replicas for t in self.strimzi.topics.values() for p in t.values()) for b in brokers}
        for topic in self.strimzi.topics.values():
            for partition in topic.values():
                if view.mode == "remove-brokers":
                    for leaving in [b for b in partition.replicas if b in view.brokers]:
                        to = min((b for b in brokers if b not in partition.replicas and b not in view.brokers),
                                 key=lambda b: (load[b], b))
                        partition.replicas[partition.replicas.index(leaving)] = to
                        load[to] += 1
                        load[leaving] -= 1
                elif view.mode == "add-brokers":
                    for new in view.brokers:
                        fair = sum(load.values()) // len(brokers)
                        if new in partition.replicas or load[new] >= fair:
                            continue
                        old = max(partition.replicas, key=lambda b: (load[b], b))
                        partition.replicas[partition.replicas.index(old)] = new
                        load[new] += 1
                        load[old] -= 1
                partition.leader = partition.replicas[0]
        self.executed.append(view.name)

    def step(self) -> None:
        for (namespace, name), view in list(self.rebalances.objects.items()):
            pending = view.annotations.get(REBALANCE_ANNOTATION, "")
            if view.state is None or pending == "refresh":
                self.rebalances.operator_moves(namespace, name, RebalanceState.PROPOSAL_READY, optimization=PROPOSAL)
            elif pending == "stop" and view.state in (RebalanceState.REBALANCING, RebalanceState.PENDING_PROPOSAL):
                self.rebalances.operator_moves(namespace, name, RebalanceState.STOPPED)
            elif pending == "approve" and view.state is RebalanceState.PROPOSAL_READY:
                self.rebalances.operator_moves(namespace, name, RebalanceState.REBALANCING)
                self.rebalances.set_progress(namespace, name, 50.0, 1.0)
            elif view.state is RebalanceState.REBALANCING and not self.hold:
                self._move(view)
                self.rebalances.operator_moves(namespace, name, RebalanceState.READY)

    @contextlib.asynccontextmanager
    async def running(self, interval_s: float = 0.02) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                self.step()
                await asyncio.sleep(interval_s)

        task = asyncio.get_running_loop().create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
