"""KafkaRoller: restart pods one at a time, never while it would hurt availability.

Strimzi's algorithm (``KafkaRoller.java``, docs/strimzi.md §3), as the twin plays it:

1. Order: nodes with the controller role first (unready before ready), then broker-only nodes
   (unready before ready), by node id; the active controller (quorum leader) is deferred while
   other nodes remain.
2. A node whose JVM is down or keeps dying (crash loop) is restarted at once, without the checks:
   it cannot get less available (KafkaAvailability counts what the others hold).
3. Otherwise ``can_roll``: brokers need ``KafkaAvailability.canRoll``, controllers the quorum
   check, combined nodes both. If not, retry with back-off (250 ms doubling between 10 attempts, 127.75 s
   in all); when exhausted the reconciliation fails NotReady (``UnforceableProblem``) and the next
   reconciliation starts over.
4. Restart = restart events, stop (SIGTERM), new Pod object, start; then wait for Ready before the
   next node (timeout: ``FatalProblem``). Ready is not "caught up": the next node's ``can_roll``
   is what waits for the ISR to recover.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.sandbox.operator.availability import Verdict, can_roll_broker, can_roll_controller
from bot.sandbox.operator.events import RestartReason
from bot.sandbox.operator.kafka_admin import AdminError, OperatorAdmin
from bot.sandbox.operator.pods import BrokerPod
from bot.sandbox.operator.status import ReconcileFailure

log = logging.getLogger(__name__)

RestartFn = Callable[[BrokerPod, list[RestartReason]], Awaitable[None]]


@dataclass(frozen=True)
class RollSettings:
    backoff_initial_s: float = 0.25
    backoff_factor: float = 2.0
    backoff_attempts: int = 10
    ready_timeout_s: float = 300.0  # STRIMZI_OPERATION_TIMEOUT_MS


def roll_order(pods: list[BrokerPod]) -> list[BrokerPod]:
    def key(p: BrokerPod) -> tuple[int, int, int]:
        return (0 if p.is_controller else 1, 1 if p.is_ready() else 0, p.node_id)

    return sorted(pods, key=key)


class Roller:
    def __init__(self, admin: OperatorAdmin, settings: RollSettings, restart: RestartFn) -> None:
        self._admin = admin
        self._settings = settings
        self._restart = restart

    async def roll(self, plan: dict[int, tuple[BrokerPod, list[RestartReason]]]) -> None:
        queue = roll_order([pod for pod, _ in plan.values()])
        while queue:
            pod = await self._next(queue)
            queue.remove(pod)
            await self._roll_one(pod, plan[pod.node_id][1])

    async def _next(self, queue: list[BrokerPod]) -> BrokerPod:
        """The first queued pod, unless it is the active controller and others remain."""
        if len(queue) == 1 or not any(p.is_controller for p in queue):
            return queue[0]
        try:
            leader, _ = await self._admin.quorum()
        except AdminError as e:
            log.info("quorum leader unknown (%s); rolling in plain order", e)
            return queue[0]
        for pod in queue:
            if not (pod.is_controller and pod.node_id == leader):
                return pod
        return queue[0]

    async def _roll_one(self, pod: BrokerPod, reasons: list[RestartReason]) -> None:
        if not pod.node.is_alive() or pod.is_crash_looping() or pod.is_failing():
            log.info("pod %s is not running: restarting it without availability checks", pod.name)
        else:
            await self._wait_until_rollable(pod)
        log.info("rolling pod %s (%s)", pod.name, ", ".join(r.pascal for r in reasons))
        await self._restart(pod, reasons)
        if not await pod.wait_ready(self._settings.ready_timeout_s):
            raise ReconcileFailure(
                "FatalProblem", f"Error while waiting for restarted pod {pod.name} to become ready")

    async def _wait_until_rollable(self, pod: BrokerPod) -> None:
        delay = self._settings.backoff_initial_s
        verdict = Verdict(False, ("not checked",))
        for attempt in range(self._settings.backoff_attempts):
            verdict = await self.can_roll(pod)
            if verdict:
                return
            log.info("pod %s cannot be rolled yet (attempt %d): %s", pod.name, attempt + 1, _summary(verdict))
            if attempt + 1 < self._settings.backoff_attempts:
                await asyncio.sleep(delay)
                delay *= self._settings.backoff_factor
        detail = _summary(verdict)
        raise ReconcileFailure("UnforceableProblem", f"Pod {pod.name} cannot be updated right now. ({detail})")

    async def can_roll(self, pod: BrokerPod) -> Verdict:
        """Both of Strimzi's checks that apply to the node's roles; Admin errors count as "not yet"."""
        try:
            if pod.is_controller:
                leader, voters = await self._admin.quorum()
                verdict = can_roll_controller(pod.node_id, leader, voters)
                if not verdict:
                    return verdict
            if pod.is_broker:
                partitions = await self._admin.partitions()
                mine = [p for p in partitions if pod.node_id in p.replicas]
                min_isr = await self._admin.min_isr_by_topic({p.topic for p in mine})
                return can_roll_broker(pod.node_id, mine, min_isr)
        except AdminError as e:
            return Verdict(False, (str(e),))
        return Verdict(True)


def _summary(verdict: Verdict) -> str:
    shown = "; ".join(verdict.reasons[:3])
    more = len(verdict.reasons) - 3
    return f"{shown} (and {more} more)" if more > 0 else shown
