"""The executors that move replicas: one batch of moves under a throttle, the cleanup that cancels a
move left in flight and the one that clears the throttles, a wiped broker catching up under a
follower throttle, and the final check.

Everything is read from the world on every call: ``done`` of a batch is "every partition has exactly
its target replicas and none is in flight", so a resumed run (done is asked first) never resubmits a
finished move, and the cleanup steps are right from any state an abort leaves (a batch in flight,
throttles set or not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from handlers.replica_moves import ReplicaLayout, ReplicaPlacement, ReplicaTarget, ReplicationThrottle
from handlers.steps.base import DoneResult, GateResult, StepContext, StepError
from handlers.steps.throttle_guard import keep_throttle
from runbooks.catalogue.replica_steps import (
    CancelMovesArgs,
    CatchUpArgs,
    ClearThrottlesArgs,
    MoveReplicasArgs,
    PartitionTarget,
    VerifyReplicasArgs,
)
from runbooks.engine.models import Step
from runbooks.rules.reassignment import PartitionMove, ids, named
from runbooks.rules.reassignment_batches import human_bytes, human_duration

Key = tuple[str, int]
CHANGED_GRACE_S = 60.0  # how long a move may look cancelled before the run pauses saying so


def _waited_s(ctx: StepContext, step: Step) -> float:
    began = step.attempt_started_at
    return (ctx.clock.now() - began).total_seconds() if began is not None else 0.0


async def layout(ctx: StepContext) -> ReplicaLayout:
    return await ctx.admin.replica_layout(ctx.cluster, await ctx.bootstrap())


def by_key(layout: ReplicaLayout) -> dict[Key, ReplicaPlacement]:
    return {(p.topic, p.partition): p for p in layout.partitions}


def alive(layout: ReplicaLayout) -> set[int]:
    return {b.id for b in layout.brokers if b.alive}


def _names(keys: Iterable[Key]) -> list[str]:
    return [f"{t}-{p}" for t, p in sorted(keys)]


async def _in_flight(ctx: StepContext, keys: Sequence[Key] | None) -> set[Key]:
    found = await ctx.admin.reassignments_in_flight(ctx.cluster, await ctx.bootstrap(), keys)
    return {(r.topic, r.partition) for r in found}


def _dead_text(dead: Iterable[int]) -> str:
    return (f"broker(s) {ids(dead)} not registered and alive: a broker died mid-move: no new batch submitted. "
            "Bring it back, then Retry (or Abort: the cleanup cancels the moves and clears the throttles)")


class MoveReplicasStep:
    """One batch: throttle it, submit the targets not reached yet, done when every partition is at target."""

    async def gate(self, ctx: StepContext, step: Step, args: MoveReplicasArgs) -> GateResult:
        now = await layout(ctx)
        involved = {b for m in args.moves for b in (*m.old, *m.new)}
        dead = involved - alive(now)
        if dead:
            return GateResult(ok=False, reason=_dead_text(dead))
        mine = {(m.topic, m.partition) for m in args.moves}
        foreign = await _in_flight(ctx, None) - mine
        if foreign:
            return GateResult(ok=False, reason=f"a reassignment this run did not start is in flight ("
                              f"{named(_names(foreign), 'partitions')}): let it finish or cancel it, then Retry")
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: MoveReplicasArgs) -> dict[str, Any]:
        now = by_key(await layout(ctx))
        return {"before": {m.name: list(now[(m.topic, m.partition)].replicas) for m in args.moves
                           if (m.topic, m.partition) in now}}

    async def act(self, ctx: StepContext, step: Step, args: MoveReplicasArgs) -> str:
        bootstrap = await ctx.bootstrap()
        throttle = ReplicationThrottle.for_moves(args.moves, args.throttle_bytes_per_s)
        await ctx.admin.set_replication_throttles(ctx.cluster, bootstrap, throttle)
        now = by_key(await layout(ctx))
        pending = [m for m in args.moves if (p := now.get((m.topic, m.partition))) is None or p.replicas != m.new]
        targets = [ReplicaTarget(topic=m.topic, partition=m.partition, replicas=m.new) for m in pending]
        refused = await ctx.admin.submit_reassignments(ctx.cluster, bootstrap, targets)
        if refused:
            said = "; ".join(f"{k}: {v}" for k, v in sorted(refused.items()))
            raise StepError(f"the controller refused {len(refused)} of the moves ({said})")
        # Again, now that the moves are in flight: a topic operator reconciling the topic's config
        # (Strimzi's deletes the throttled-replica lists it did not write, strimzi#9972) can strip
        # them between the first call and the submission, and the batch would copy unthrottled.
        await ctx.admin.set_replication_throttles(ctx.cluster, bootstrap, throttle)
        return (f"throttled brokers {ids(throttle.brokers)} at {human_bytes(args.throttle_bytes_per_s)}/s; submitted "
                f"{len(pending)} moves" + (f" ({len(args.moves) - len(pending)} already at target)"
                                           if len(pending) < len(args.moves) else ""))

    async def done(self, ctx: StepContext, step: Step, args: MoveReplicasArgs) -> DoneResult:
        now = await layout(ctx)
        placed = by_key(now)
        keys = [(m.topic, m.partition) for m in args.moves]
        moving = await _in_flight(ctx, keys)
        at_target = {(m.topic, m.partition) for m in args.moves
                     if (p := placed.get((m.topic, m.partition))) is not None and p.replicas == m.new}
        if not moving and len(at_target) == len(args.moves):
            return DoneResult(done=True, detail=f"{len(args.moves)} partitions at their target replicas")
        dead = {b for m in args.moves for b in (*m.old, *m.new)} - alive(now)
        if dead and step.applied:
            return DoneResult(done=False, failure=_dead_text(dead))
        # Neither in flight nor at target. Right after a move completes, a broker's metadata can still
        # list the target with the dropped replicas (the controller no longer lists the move): that
        # is a move finishing. A partition without every target broker is a move cancelled or
        # changed outside the run; metadata can lag that way too for a moment, hence the grace.
        lost = [m for m in args.moves if (m.topic, m.partition) not in moving | at_target
                and not set(m.new) <= set(placed[(m.topic, m.partition)].replicas
                                          if (m.topic, m.partition) in placed else ())]
        if lost and step.applied and _waited_s(ctx, step) >= CHANGED_GRACE_S:
            return DoneResult(done=False, failure=_changed_text(lost, placed))
        detail = await _progress(ctx, step, args, moving, at_target)
        if moving:
            copying = [m for m in args.moves if (m.topic, m.partition) in moving]
            throttle = ReplicationThrottle.for_moves(copying, args.throttle_bytes_per_s)
            note = await keep_throttle(ctx, step, throttle, alive(now), _waited_s(ctx, step))
            detail += f"; {note}" if note else ""
        return DoneResult(done=False, detail=detail)


def _changed_text(lost: Sequence[PartitionMove], placed: dict[Key, ReplicaPlacement]) -> str:
    shown = [f"{m.name} has {list(p.replicas) if (p := placed.get((m.topic, m.partition))) else '?'}, target "
             f"{list(m.new)}" for m in lost]
    return (f"moves of this run were cancelled or changed outside it ({named(shown, 'partitions')}): Retry submits "
            "them again, Abort cleans up")


async def _progress(ctx: StepContext, step: Step, args: MoveReplicasArgs, moving: set[Key],
                    at_target: set[Key]) -> str:
    """Bytes left (in-flight moves' missing bytes, plus the whole of moves not started), the rate
    achieved since this attempt began (when it has run a while), and the ETA at the throttle."""
    progress = await ctx.admin.reassignment_progress(ctx.cluster, await ctx.bootstrap(), sorted(moving))
    left = sum(p.bytes_left for p in progress) + sum(
        m.bytes_to_copy for m in args.moves if (m.topic, m.partition) not in moving | at_target)
    rate = args.throttle_bytes_per_s
    text = (f"{len(at_target)}/{len(args.moves)} partitions moved, {len(moving)} in flight; {human_bytes(left)} left "
            f"at {human_bytes(rate)}/s, ETA about {human_duration(left / rate)}")
    elapsed = _waited_s(ctx, step)
    copied = sum(m.bytes_to_copy for m in args.moves) - left
    if elapsed >= 1 and copied > 0:
        text += f" (achieved {human_bytes(copied / elapsed)}/s)"
    return text


class CancelMovesStep:
    """Cleanup: cancel the run's moves still in flight; say which partitions got where."""

    async def gate(self, ctx: StepContext, step: Step, args: CancelMovesArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: CancelMovesArgs) -> dict[str, Any]:
        moving = await _in_flight(ctx, [(t.topic, t.partition) for t in args.partitions])
        return {"in_flight": _names(moving)}

    async def act(self, ctx: StepContext, step: Step, args: CancelMovesArgs) -> str:
        keys = [(t.topic, t.partition) for t in args.partitions]
        moving = sorted(await _in_flight(ctx, keys))
        if not moving:
            return "no move of this run in flight"
        refused = await ctx.admin.cancel_reassignments(ctx.cluster, await ctx.bootstrap(), moving)
        if refused:
            raise StepError(f"the controller refused to cancel {'; '.join(f'{k}: {v}' for k, v in refused.items())}")
        return f"cancelled the moves of {named(_names(moving), 'partitions')}"

    async def done(self, ctx: StepContext, step: Step, args: CancelMovesArgs) -> DoneResult:
        keys = [(t.topic, t.partition) for t in args.partitions]
        moving = await _in_flight(ctx, keys)
        if moving:
            return DoneResult(done=False, detail=f"waiting for the cancel of {named(_names(moving), 'partitions')}")
        placed = by_key(await layout(ctx))
        reached = [t.name for t in args.partitions if (p := placed.get((t.topic, t.partition))) and
                   p.replicas == t.replicas]
        cancelled = [str(n) for n in step.observed.get("in_flight", ())]
        others = len(args.partitions) - len(reached)
        text = f"{len(reached)} of {len(args.partitions)} partitions at their target replicas"
        if others:
            text += f"; {others} not (left at their replicas before their last move)"
        if cancelled:
            text += f"; cancelled: {named(cancelled, 'partitions')}"
        return DoneResult(done=True, detail=text)


class ClearThrottlesStep:
    """Cleanup: remove the rates on the run's brokers and the throttled-replica lists of its topics."""

    async def gate(self, ctx: StepContext, step: Step, args: ClearThrottlesArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: ClearThrottlesArgs) -> dict[str, Any]:
        present = await ctx.admin.replication_throttles(ctx.cluster, await ctx.bootstrap())
        return {"brokers": sorted(set(args.brokers) & set(present.brokers)),
                "topics": sorted(set(args.topics) & set(present.topics))}

    async def act(self, ctx: StepContext, step: Step, args: ClearThrottlesArgs) -> str:
        now = await layout(ctx)
        live = sorted(set(args.brokers) & alive(now))
        topics = sorted(set(args.topics) & {p.topic for p in now.partitions})
        await ctx.admin.remove_replication_throttles(ctx.cluster, await ctx.bootstrap(), live, topics)
        down = sorted(set(args.brokers) - set(live))
        return (f"removed the throttles of brokers {ids(live)} and {len(topics)} topics"
                + (f"; brokers {ids(down)} are down: cleared when this step is retried after they return" if down
                   else ""))

    async def done(self, ctx: StepContext, step: Step, args: ClearThrottlesArgs) -> DoneResult:
        present = await ctx.admin.replication_throttles(ctx.cluster, await ctx.bootstrap())
        brokers = sorted(set(args.brokers) & set(present.brokers))
        topics = sorted(set(args.topics) & set(present.topics))
        if brokers or topics:
            return DoneResult(done=False, detail=f"throttles still on brokers {ids(brokers) or 'none'}, topics "
                              f"{', '.join(topics) or 'none'}")
        down = sorted(set(args.brokers) - alive(await layout(ctx)))
        checked = sorted(set(args.brokers) - set(down))
        return DoneResult(done=True, detail=f"no throttle left on brokers {ids(checked)} or the run's "
                          f"{len(args.topics)} topics" + (f"; brokers {ids(down)} are down and could not be cleared: "
                                                          "check them when they return" if down else ""))


class CatchUpStep:
    """A wiped broker copies its partitions again under a follower throttle; done when in every ISR."""

    async def gate(self, ctx: StepContext, step: Step, args: CatchUpArgs) -> GateResult:
        if args.broker not in alive(await layout(ctx)):
            return GateResult(ok=False, reason=f"broker {args.broker} is not registered and alive")
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: CatchUpArgs) -> dict[str, Any]:
        return {"checked": True}  # an empty observation reads as none yet

    async def act(self, ctx: StepContext, step: Step, args: CatchUpArgs) -> str:
        await ctx.admin.set_replication_throttles(ctx.cluster, await ctx.bootstrap(), _follower_throttle(args))
        return f"broker {args.broker} follows at up to {human_bytes(args.throttle_bytes_per_s)}/s"

    async def done(self, ctx: StepContext, step: Step, args: CatchUpArgs) -> DoneResult:
        now = await layout(ctx)
        placed = by_key(now)
        behind = [p for t in args.partitions if (p := placed.get((t.topic, t.partition))) is not None
                  and args.broker not in p.isr]
        if not behind:
            return DoneResult(done=True, detail=f"broker {args.broker} in the ISR of all {len(args.partitions)} "
                              "partitions")
        left = sum(max(0, p.size_bytes - p.sizes.get(args.broker, 0)) for p in behind)
        eta = human_duration(left / args.throttle_bytes_per_s)
        detail = (f"broker {args.broker} out of the ISR of {len(behind)} partitions; {human_bytes(left)} left, "
                  f"ETA about {eta}")
        if step.applied:
            note = await keep_throttle(ctx, step, _follower_throttle(args), alive(now), _waited_s(ctx, step))
            detail += f"; {note}" if note else ""
        return DoneResult(done=False, detail=detail)


def _follower_throttle(args: CatchUpArgs) -> ReplicationThrottle:
    """The wiped broker's follower throttle: its rate, and its replicas in the topics' follower lists."""
    followers: dict[str, list[tuple[int, int]]] = {}
    for t in args.partitions:
        followers.setdefault(t.topic, []).append((t.partition, args.broker))
    return ReplicationThrottle(rate_bytes_per_s=args.throttle_bytes_per_s, brokers=(args.broker,),
                               leader_replicas={}, follower_replicas={k: tuple(sorted(v))
                                                                      for k, v in sorted(followers.items())})


class VerifyReplicasStep:
    async def gate(self, ctx: StepContext, step: Step, args: VerifyReplicasArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: VerifyReplicasArgs) -> dict[str, Any]:
        return {"checked": True}  # an empty observation reads as none yet

    async def act(self, ctx: StepContext, step: Step, args: VerifyReplicasArgs) -> str:
        return "checking replicas and ISR"

    async def done(self, ctx: StepContext, step: Step, args: VerifyReplicasArgs) -> DoneResult:
        now = await layout(ctx)
        placed = by_key(now)
        urp = [p for p in now.partitions if set(p.isr) != set(p.replicas)]
        wrong = _misplaced(args.partitions, placed)
        if urp or wrong:
            parts = []
            if urp:
                names = [f"{p.topic}-{p.partition}" for p in urp]
                parts.append(f"{len(urp)} under-replicated ({named(names, 'more')})")
            if wrong:
                parts.append(f"not at their replicas: {named(wrong, 'partitions')}")
            return DoneResult(done=False, detail="; ".join(parts))
        who = f"; broker {args.broker} holds its {len(args.partitions)} replicas" if args.broker is not None else ""
        return DoneResult(done=True, detail=f"0 URP, every ISR complete{who}")


def _misplaced(targets: Iterable[PartitionTarget], placed: dict[Key, ReplicaPlacement]) -> list[str]:
    return [f"{t.name} has {list(p.replicas) if p else '?'}, expected {list(t.replicas)}" for t in targets
            if (p := placed.get((t.topic, t.partition))) is None or p.replicas != t.replicas]
