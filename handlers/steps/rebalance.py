"""The executors of ``--engine cruise-control``: a run's KafkaRebalance created, approved from its
proposal, followed to Ready, and stopped however the run ends (``runbooks.catalogue.rebalance_steps``).

Every write goes through ``KafkaRebalances``: ``create_rebalance`` (no annotation, never
auto-approval) and the check-and-write ``annotate`` (the value is written only in the state it is
valid in, ``runbooks.rules.rebalance.VALID_ACTIONS``). The resource is named after the run
(``rebalance_name``), so a resumed run finds the one it created and never makes a second.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from handlers.rebalances import KafkaRebalances, RebalanceGone, RebalanceMoved
from handlers.steps.base import DoneResult, GateResult, StepContext, StepError
from runbooks.catalogue.rebalance_steps import (
    CreateRebalanceArgs,
    RunRebalanceArgs,
    StopRebalanceArgs,
    rebalance_name,
)
from runbooks.engine.models import Step
from runbooks.rules.rebalance import (
    REBALANCE_ANNOTATION,
    KafkaRebalanceView,
    OptimizationSummary,
    RebalanceAction,
    RebalanceProgress,
    RebalanceState,
)
from runbooks.rules.rebalance_card import minutes

_STOPPABLE = (RebalanceState.REBALANCING, RebalanceState.PENDING_PROPOSAL)


def _port(ctx: StepContext) -> KafkaRebalances:
    if ctx.rebalances is None:
        raise StepError("this bot was started without access to KafkaRebalance resources", permanent=True)
    return ctx.rebalances


def _name(ctx: StepContext, label: str) -> str:
    return rebalance_name(ctx.cluster.kafka, ctx.run_id, label)


async def _read(ctx: StepContext, label: str) -> KafkaRebalanceView:
    name = _name(ctx, label)
    found = await _port(ctx).get_rebalance(ctx.cluster, name)
    if found is None:
        raise StepError(f"KafkaRebalance {ctx.cluster.namespace}/{name} is gone: someone deleted it")
    return found


def _value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "unknown"
    return f"{value:,.0f}{unit}" if value == int(value) or abs(value) >= 100 else f"{value:,.1f}{unit}"


def proposal_figures(result: OptimizationSummary) -> tuple[str, ...]:
    """What the approver reads: Cruise Control's proposal, its figures as the resource reports them."""
    return (
        f"Replica movements: {_value(result.replica_movements)}; leader movements: {_value(result.leader_movements)}",
        f"Data to move: {_value(result.data_to_move_mb, ' MB')}",
        f"Balancedness: {_value(result.balancedness_before)} before → {_value(result.balancedness_after)} after "
        "(100 is perfectly balanced)",
    )


def _why(rebalance: KafkaRebalanceView) -> str:
    return ": ".join(p for p in (rebalance.reason, rebalance.message) if p) or "no reason given"


def _progress(progress: RebalanceProgress | None) -> str:
    if progress is None or progress.completed_percent is None:
        return "progress not reported yet"
    eta = "" if progress.eta_minutes is None else f", ETA {minutes(timedelta(minutes=progress.eta_minutes))}"
    return f"{_value(progress.completed_percent)} % of the data moved{eta}"


class CreateRebalanceStep:
    async def gate(self, ctx: StepContext, step: Step, args: CreateRebalanceArgs) -> GateResult:
        status = await ctx.gateway.kafka_status(ctx.cluster)
        if not status.cruise_control:
            return GateResult(ok=False, reason=f"the Kafka resource {ctx.cluster.kafka} no longer has "
                              "spec.cruiseControl: there is no Cruise Control to ask")
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: CreateRebalanceArgs) -> dict[str, Any]:
        return {"name": _name(ctx, args.label)}

    async def act(self, ctx: StepContext, step: Step, args: CreateRebalanceArgs) -> str:
        name = _name(ctx, args.label)
        try:
            await _port(ctx).create_rebalance(ctx.cluster, name, mode=args.mode, brokers=args.brokers,
                                              run_id=ctx.run_id)
        except RebalanceMoved as exc:
            raise StepError(str(exc), permanent=True) from None
        return f"created KafkaRebalance {name} ({args.mode})"

    async def done(self, ctx: StepContext, step: Step, args: CreateRebalanceArgs) -> DoneResult:
        found = await _port(ctx).get_rebalance(ctx.cluster, _name(ctx, args.label))
        if found is None or found.state in (None, RebalanceState.NEW):
            return DoneResult(done=False, detail="waiting for the operator to ask Cruise Control for a proposal")
        if found.state is RebalanceState.PENDING_PROPOSAL:
            return DoneResult(done=False, detail="Cruise Control is computing a proposal")
        if found.state is RebalanceState.NOT_READY:
            return DoneResult(done=False, failure=f"KafkaRebalance {found.name} is NotReady: {_why(found)}")
        if found.state in (RebalanceState.STOPPED, RebalanceState.RECONCILIATION_PAUSED):
            return DoneResult(done=False, failure=f"KafkaRebalance {found.name} is {found.state.value}")
        return DoneResult(done=True, detail="proposal ready: " + "; ".join(proposal_figures(found.optimization)))


class RunRebalanceStep:
    async def gate(self, ctx: StepContext, step: Step, args: RunRebalanceArgs) -> GateResult:
        """Asked while the step waits for approval too: the findings are the proposal's figures, and a
        proposal older than ``stale_after_s`` is refreshed first (the cluster moved on since)."""
        found = await _read(ctx, args.label)
        if found.state is RebalanceState.PENDING_PROPOSAL:
            return GateResult(ok=False, reason="Cruise Control is computing a fresh proposal: approve once its "
                              "figures are shown")
        if found.state is RebalanceState.NOT_READY:
            return GateResult(ok=False, reason=f"KafkaRebalance {found.name} is NotReady: {_why(found)}")
        if found.state is not RebalanceState.PROPOSAL_READY:
            state = found.state.value if found.state else "without a status"
            return GateResult(ok=False, reason=f"KafkaRebalance {found.name} is {state}, not ProposalReady")
        if found.pending_action:
            return GateResult(ok=False, reason=f"KafkaRebalance {found.name} carries {REBALANCE_ANNOTATION}="
                              f"{found.pending_action}, which the operator has not acted on yet")
        age = found.proposal_age(ctx.clock.now())
        if age is not None and age > timedelta(seconds=args.stale_after_s):
            with contextlib.suppress(RebalanceMoved):  # moved on: the next look judges the new state
                await _port(ctx).annotate(ctx.cluster, found.name, RebalanceAction.REFRESH,
                                          expected_state=RebalanceState.PROPOSAL_READY, expected_uid=found.uid)
            return GateResult(ok=False, reason=f"the proposal was {minutes(age)} old: asked Cruise Control for a "
                              "fresh one (refresh)")
        return GateResult(ok=True, findings=proposal_figures(found.optimization),
                          reason=f"proposal of KafkaRebalance {found.name}, {minutes(age or timedelta(0))} old")

    async def observe(self, ctx: StepContext, step: Step, args: RunRebalanceArgs) -> dict[str, Any]:
        found = await _read(ctx, args.label)
        return {"name": found.name, "uid": found.uid, "approved_figures": list(proposal_figures(found.optimization))}

    async def act(self, ctx: StepContext, step: Step, args: RunRebalanceArgs) -> str:
        name, uid = str(step.observed["name"]), str(step.observed["uid"])
        try:
            await _port(ctx).annotate(ctx.cluster, name, RebalanceAction.APPROVE,
                                      expected_state=RebalanceState.PROPOSAL_READY, expected_uid=uid)
        except RebalanceGone:
            raise StepError(f"KafkaRebalance {name} is gone: someone deleted it") from None
        except RebalanceMoved as exc:
            current = exc.current
            started = current.state in (RebalanceState.REBALANCING, RebalanceState.READY)
            if started or current.pending_action == RebalanceAction.APPROVE.value:
                return f"KafkaRebalance {name} was already approved"
            raise StepError(f"nothing approved: {exc}") from None
        return f"approved KafkaRebalance {name} ({REBALANCE_ANNOTATION}=approve)"

    async def done(self, ctx: StepContext, step: Step, args: RunRebalanceArgs) -> DoneResult:
        found = await _read(ctx, args.label)
        if found.state is RebalanceState.READY:
            return DoneResult(done=True, detail=f"KafkaRebalance {found.name} Ready: Cruise Control's proposal "
                              "executed")
        if found.state is RebalanceState.REBALANCING:
            progress = await _port(ctx).progress(ctx.cluster, found)
            return DoneResult(done=False, detail=f"rebalancing: {_progress(progress)}")
        if found.state is RebalanceState.NOT_READY:
            return DoneResult(done=False, failure=f"KafkaRebalance {found.name} is NotReady: {_why(found)}")
        if found.state is RebalanceState.STOPPED:
            return DoneResult(done=False, failure=f"KafkaRebalance {found.name} was stopped: Cruise Control "
                              "finished the batch in flight and cancelled the rest")
        return DoneResult(done=False, detail="waiting for the operator to start the approved proposal")


class StopRebalanceStep:
    async def gate(self, ctx: StepContext, step: Step, args: StopRebalanceArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: StopRebalanceArgs) -> dict[str, Any]:
        return {"names": [_name(ctx, label) for label in args.labels]}

    async def _stop(self, ctx: StepContext, rebalance: KafkaRebalanceView) -> bool:
        if rebalance.state not in _STOPPABLE or rebalance.pending_action:
            return False
        try:
            await _port(ctx).annotate(ctx.cluster, rebalance.name, RebalanceAction.STOP,
                                      expected_state=rebalance.state, expected_uid=rebalance.uid)
        except (RebalanceMoved, RebalanceGone):
            return False  # moved on: the done-check judges the new state
        return True

    async def _mine(self, ctx: StepContext, args: StopRebalanceArgs) -> list[KafkaRebalanceView]:
        found = [await _port(ctx).get_rebalance(ctx.cluster, _name(ctx, label)) for label in args.labels]
        return [r for r in found if r is not None]

    async def act(self, ctx: StepContext, step: Step, args: StopRebalanceArgs) -> str:
        stopped = [r.name for r in await self._mine(ctx, args) if await self._stop(ctx, r)]
        return f"asked to stop {', '.join(stopped)}" if stopped else "no rebalance of this run to stop"

    async def done(self, ctx: StepContext, step: Step, args: StopRebalanceArgs) -> DoneResult:
        """Not done while one is Rebalancing, or about to start (an approve the operator has not acted
        on yet): the stop is asked here as well, since such a rebalance starts after ``act`` looked."""
        running = []
        for rebalance in await self._mine(ctx, args):
            about_to_start = rebalance.pending_action == RebalanceAction.APPROVE.value
            if rebalance.state is RebalanceState.REBALANCING or about_to_start:
                await self._stop(ctx, rebalance)
                running.append(rebalance.name)
        if running:
            return DoneResult(done=False, detail=f"waiting for {', '.join(running)} to stop")
        return DoneResult(done=True, detail="no rebalance of this run is running")
