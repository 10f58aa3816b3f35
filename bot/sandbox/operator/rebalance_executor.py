"""The Cruise Control twin's executor: a proposal carried out as real partition reassignments.

Like Cruise Control's executor: moves go in batches, at most ``concurrentPartitionMovementsPerBroker``
moves touching any one broker at a time; with ``replicationThrottle`` the leader/follower throttled
rates are set on the brokers involved and the throttled replicas on the moving topics, and removed
again however the execution ends. After the replica moves, a preferred leader election puts the
proposal's leaders in place. ``stop()`` cancels the in-flight reassignments (Kafka's
AlterPartitionReassignments with no target) and submits nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka.admin import ConfigResourceType

from bot.sandbox.operator.kafka_admin import AdminError, OperatorAdmin
from bot.sandbox.operator.rebalance_proposal import MB, Proposal

log = logging.getLogger(__name__)
POLL_S = 0.5
RATE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
REPLICA_KEYS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")

Move = tuple[tuple[str, int], tuple[int, ...], tuple[int, ...]]  # (partition, from replicas, to replicas)


def batches(moves: list[Move], per_broker: int) -> list[list[Move]]:
    """Moves in submission order, each batch touching any broker at most ``per_broker`` times."""
    left = list(moves)
    out: list[list[Move]] = []
    while left:
        load: dict[int, int] = {}
        batch: list[Move] = []
        for move in list(left):
            touched = set(move[1]) ^ set(move[2])
            if all(load.get(b, 0) < per_broker for b in touched) or not batch:
                batch.append(move)
                left.remove(move)
                for b in touched:
                    load[b] = load.get(b, 0) + 1
        out.append(batch)
    return out


@dataclass
class Progress:
    total_moves: int
    total_bytes: int
    finished_moves: int = 0
    finished_bytes: int = 0
    in_progress: int = 0
    started: float = field(default_factory=time.monotonic)
    state: str = "INTER_BROKER_REPLICA_MOVEMENT_TASK_IN_PROGRESS"

    def percent(self) -> float:
        if self.total_bytes == 0:
            return round(100.0 * self.finished_moves / max(1, self.total_moves), 1)
        return round(100.0 * self.finished_bytes / self.total_bytes, 1)

    def eta_minutes(self, throttle: int | None) -> int:
        left = self.total_bytes - self.finished_bytes
        if left <= 0:
            return 0
        elapsed = time.monotonic() - self.started
        rate = throttle or (self.finished_bytes / elapsed if elapsed > 0 and self.finished_bytes else 0)
        return math.ceil(left / rate / 60) if rate else 1

    def config_map_data(self, *, throttle: int | None, per_broker: int, session: str) -> dict[str, str]:
        """What Strimzi's progress ConfigMap holds while Rebalancing."""
        executor = {
            "state": self.state,
            "triggeredUserTaskId": session,
            "triggeredTaskReason": "Rebalance requested by the KafkaRebalance custom resource",
            "numTotalPartitionMovements": self.total_moves,
            "numFinishedPartitionMovements": self.finished_moves,
            "numInProgressPartitionMovements": self.in_progress,
            "numPendingPartitionMovements": self.total_moves - self.finished_moves - self.in_progress,
            "totalDataToMoveMB": math.ceil(self.total_bytes / MB),
            "finishedDataMovementMB": self.finished_bytes // MB,
            "maximumConcurrentPartitionMovementsPerBroker": per_broker,
        }
        return {
            "estimatedTimeToCompletionInMinutes": str(self.eta_minutes(throttle)),
            "completedByteMovementPercentage": str(self.percent()),
            "executorState.json": json.dumps(executor),
        }


class Execution:
    """One proposal being executed (an asyncio task); ``outcome`` is set when it ends."""

    def __init__(self, admin: OperatorAdmin, proposal: Proposal, current: Mapping[tuple[str, int], tuple[int, ...]],
                 *, throttle: int | None, per_broker: int, session: str) -> None:
        self.admin = admin
        self.throttle = throttle
        self.per_broker = max(1, per_broker)
        self.session = session
        self.moves: list[Move] = [(key, current.get(key, ()), target) for key, target in proposal.targets.items()]
        self.sizes = proposal.sizes
        self.progress = Progress(total_moves=len(self.moves), total_bytes=proposal.data_to_move_bytes)
        self._stop = asyncio.Event()
        self.outcome: str | None = None  # "done", "stopped" or "failed: <why>"
        self.task: asyncio.Task[None] = asyncio.create_task(self._run(), name=f"rebalance-{session[:8]}")

    def stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _run(self) -> None:
        throttled: dict[str, Any] = {}
        try:
            if self.throttle:
                throttled = await self._set_throttles()
            for batch in batches(self.moves, self.per_broker):
                if self._stop.is_set():
                    break
                await self._run_batch(batch)
            if self._stop.is_set():
                self.progress.state = "STOPPED"
                self.outcome = "stopped"
                return
            await self.admin.elect_preferred_leaders([key for key, _, _ in self.moves])
            self.progress.state = "NO_TASK_IN_PROGRESS"
            self.outcome = "done"
        except AdminError as e:
            log.warning("rebalance %s failed: %s", self.session, e)
            self.outcome = f"failed: {e}"
        except asyncio.CancelledError:
            self.outcome = "stopped"
            raise
        finally:
            if throttled:
                await self._clear_throttles(throttled)

    async def _run_batch(self, batch: list[Move]) -> None:
        refused = await self.admin.reassign({key: list(target) for key, _, target in batch})
        if refused:
            raise AdminError(f"Kafka refused the reassignment of {', '.join(sorted(refused))}: {refused}")
        pending = {key for key, _, _ in batch}
        self.progress.in_progress = len(pending)
        while pending:
            if self._stop.is_set():
                log.info("rebalance %s stopped: cancelling %d in-flight reassignment(s)", self.session, len(pending))
                await self.admin.reassign(dict.fromkeys(pending))
                self.progress.in_progress = 0
                return
            await asyncio.sleep(POLL_S)
            finished = pending - await self.admin.reassignments_in_flight()
            for key in finished:
                move = next(m for m in batch if m[0] == key)
                self.progress.finished_moves += 1
                self.progress.finished_bytes += len(set(move[2]) - set(move[1])) * self.sizes.get(key, 0)
            pending -= finished
            self.progress.in_progress = len(pending)

    async def _set_throttles(self) -> dict[str, Any]:
        """Rates on every broker a move touches; throttled replicas per topic. What was set, to undo it."""
        brokers: set[int] = set()
        leader_replicas: dict[str, list[str]] = {}
        follower_replicas: dict[str, list[str]] = {}
        for (topic, partition), before, after in self.moves:
            brokers.update(before)
            brokers.update(after)
            leader_replicas.setdefault(topic, []).extend(f"{partition}:{b}" for b in before)
            follower_replicas.setdefault(topic, []).extend(f"{partition}:{b}" for b in sorted(set(after) - set(before)))
        rate = str(self.throttle)
        done: dict[str, Any] = {"brokers": [], "topics": []}
        for broker in sorted(brokers):
            await self.admin.alter_configs(ConfigResourceType.BROKER, str(broker), dict.fromkeys(RATE_KEYS, rate))
            done["brokers"].append(broker)
        for topic in sorted(leader_replicas):
            await self.admin.alter_configs(ConfigResourceType.TOPIC, topic, {
                REPLICA_KEYS[0]: ",".join(leader_replicas[topic]),
                REPLICA_KEYS[1]: ",".join(follower_replicas.get(topic) or leader_replicas[topic])})
            done["topics"].append(topic)
        return done

    async def _clear_throttles(self, throttled: dict[str, Any]) -> None:
        for broker in throttled["brokers"]:
            with contextlib.suppress(AdminError):
                await self.admin.alter_configs(ConfigResourceType.BROKER, str(broker), {}, RATE_KEYS)
        for topic in throttled["topics"]:
            with contextlib.suppress(AdminError):
                await self.admin.alter_configs(ConfigResourceType.TOPIC, topic, {}, REPLICA_KEYS)
