"""One piece of a run's work through its step executor, answered as an event for ``decide()``.

The rules of acting live here: the step's done-check is asked before its action (a step that is
already done is never acted on again, whatever crashed in between), the action goes ahead only
while the run's fencing token is still the cluster lock's, and every error is classified: a
permanent one fails the run, a failed action pauses it so a human sees it, and a failed check is
looked at again until the step's deadline pauses the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from handlers.clusters import ManagedCluster
from handlers.mirror_ports import MirrorCanary, MirrorMakers
from handlers.ports import Clock, ClusterGateway, ClusterLocks, KafkaAdmin, StoreUnavailable
from handlers.rebalances import KafkaRebalances
from handlers.steps.registry import EXECUTORS, StepContext, StepError
from runbooks.engine.events import (
    ActionApplied,
    ActionFailed,
    ApplyAction,
    CheckCondition,
    CheckGate,
    ConditionChecked,
    Effect,
    Event,
    GateChecked,
    Observe,
    Observed,
)
from runbooks.engine.models import Run

log = logging.getLogger(__name__)

CHECKED = " (checked "  # an advisory gate's answer ends with the time it was checked
LOST_LOCK = "this run no longer holds the cluster lock"


class StepExecution:
    """Runs the effects the engine asks for (gate, observe, act, check) against the cluster ports."""

    def __init__(self, *, clusters: Mapping[str, ManagedCluster], gateway: ClusterGateway, admin: KafkaAdmin,
                 locks: ClusterLocks, clock: Clock, rebalances: KafkaRebalances | None = None,
                 mirror_makers: MirrorMakers | None = None, canary: MirrorCanary | None = None) -> None:
        self._clusters = clusters
        self._mirror_makers = mirror_makers
        self._canary = canary
        self._rebalances = rebalances
        self._gateway = gateway
        self._admin = admin
        self._locks = locks
        self._clock = clock

    def _context(self, run: Run) -> StepContext:
        cluster = self._clusters.get(run.cluster)
        if cluster is None:
            raise StepError(f"cluster {run.cluster} is no longer in the configuration", permanent=True)
        return StepContext(cluster=cluster.ref, gateway=self._gateway, admin=self._admin, clock=self._clock,
                           rebalances=self._rebalances, run_id=run.id,
                           clusters={name: c.ref for name, c in self._clusters.items()},
                           mirror_makers=self._mirror_makers, canary=self._canary)

    async def holds_lock(self, run: Run) -> bool:
        """Whether the run's fencing token is still its cluster lock's (asked right before acting)."""
        return run.fencing_token is None or await self._locks.check_token(run.cluster, run.fencing_token)

    async def execute(self, run: Run, effect: Effect) -> Event | None:
        """Do one piece of work; the answer is an event for decide(), or None to look again later."""
        step = run.current_step
        assert step is not None
        executor = EXECUTORS.get(step.spec.kind)
        if executor is None:
            return ActionFailed(step_id=step.id, error=f"unknown step kind {step.spec.kind}", permanent=True)
        try:
            ctx = self._context(run)
            match effect:
                case CheckGate(advisory=advisory):
                    gate = await executor.gate(ctx, step)
                    reason = gate.reason if gate.ok or not advisory else f"not yet safe: {gate.reason}"
                    if advisory:  # the card says how fresh the advice is (it is re-checked while waiting)
                        reason += f"{CHECKED}{self._clock.now():%H:%M:%S} UTC)"
                    return GateChecked(step_id=step.id, ok=gate.ok, findings=gate.findings, reason=reason)
                case Observe():
                    return Observed(step_id=step.id, data=await executor.observe(ctx, step))
                case ApplyAction():
                    try:
                        done = await executor.done(ctx, step)
                    except StepError:
                        raise
                    except Exception as exc:
                        # Cannot tell whether it is done yet: never act blind, look again later.
                        log.info("run %s step %s: done-check failed (%s); retrying", run.id, step.id, exc)
                        return None
                    if done.done:
                        return ConditionChecked(step_id=step.id, done=True, detail=done.detail)
                    if not await self.holds_lock(run):
                        return ActionFailed(step_id=step.id, error=LOST_LOCK)
                    return ActionApplied(step_id=step.id, detail=await executor.act(ctx, step))
                case CheckCondition():
                    result = await executor.done(ctx, step)
                    return ConditionChecked(step_id=step.id, done=result.done, detail=result.detail,
                                            failure=result.failure)
        except StepError as exc:
            if isinstance(effect, ApplyAction | Observe) or exc.permanent:
                return ActionFailed(step_id=step.id, error=str(exc), permanent=exc.permanent)
            log.info("run %s step %s: %s (will look again)", run.id, step.id, exc)
            return None
        except StoreUnavailable:
            raise
        except Exception as exc:
            # Kafka or Kubernetes hiccups: checks are retried until the step's deadline pauses the
            # run; an action that failed pauses at once, so a human sees it.
            if isinstance(effect, ApplyAction):
                return ActionFailed(step_id=step.id, error=f"{type(exc).__name__}: {exc}")
            log.info("run %s step %s: check failed (%s: %s); retrying", run.id, step.id, type(exc).__name__, exc)
            return None
        return None


def unchecked(detail: str) -> str:
    """An advisory gate's answer without the time it was checked, to compare two answers."""
    head, found, _ = detail.rpartition(CHECKED)
    return head if found else detail
