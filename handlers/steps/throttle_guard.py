"""Keeping a running move's throttle in force.

Something outside the run can remove a throttle while replicas copy: Strimzi's Topic Operator
deletes the throttled-replica lists of the topics it manages when the Kafka deploys no Cruise
Control (strimzi#9972), and a person or another tool can delete the rates. The copy then runs at
full speed and can starve producers. So every poll of a step that copies under a throttle reads
the throttle back, sets again what was removed and says so on the card. A rate someone changed to
another value is left as they set it (raising it to finish sooner is a decision a human may make)
and shown.
"""

from __future__ import annotations

from collections.abc import Set

from handlers.ports import KafkaResourceStatus
from handlers.replica_moves import ReplicationThrottle, ThrottleGaps
from handlers.steps.base import StepContext
from runbooks.engine.models import Step
from runbooks.rules.reassignment import ids, named

REMOVED_MARK = "throttle removed outside this run"
# Right after the run sets a throttle a broker may not show it yet; setting it again is harmless,
# but the card would blame somebody else.
SETTLE_S = 5.0


def _who(status: KafkaResourceStatus, gaps: ThrottleGaps) -> str:
    if gaps.lists_removed and status.topic_operator and not status.cruise_control:
        return ("most likely Strimzi's Topic Operator: the Kafka resource deploys it without Cruise Control, and it "
                "deletes the throttled-replica lists of topics that have a KafkaTopic (strimzi#9972)")
    return "by hand or by another tool (kafka-configs, a GitOps job)"


def _what(gaps: ThrottleGaps) -> str:
    parts = []
    if gaps.rates_removed:
        parts.append(f"the rates of brokers {ids(gaps.rates_removed)}")
    if gaps.lists_removed:
        parts.append(f"the throttled-replica lists of {named(list(gaps.lists_removed), 'topics')}")
    return " and ".join(parts)


async def keep_throttle(ctx: StepContext, step: Step, throttle: ReplicationThrottle, live: Set[int],
                        waited_s: float) -> str:
    """Read the throttle back, set again what was removed; the card's note about it ('' when in force).
    A note about a removal stays on the card for the rest of the step (carried in ``step.detail``)."""
    mine = throttle.model_copy(update={"brokers": tuple(b for b in throttle.brokers if b in live)})
    bootstrap = await ctx.bootstrap()
    present = await ctx.admin.replication_throttles(ctx.cluster, bootstrap, mine.topics, mine.brokers)
    # A broker that did not answer may have just died: its rate is unknown, and setting it would wait
    # on it. The step's next poll sees whether it is dead.
    mine = mine.model_copy(update={"brokers": tuple(b for b in mine.brokers if b not in present.unread)})
    gaps = ThrottleGaps.of(mine, present)
    notes = [f"broker {b} throttle changed outside this run, left as set: {found}"
             for b, found in sorted(gaps.rates_changed.items())]
    if gaps.removed:
        # Only the removed rates: setting every broker's again would undo a rate somebody changed.
        await ctx.admin.set_replication_throttles(
            ctx.cluster, bootstrap, mine.model_copy(update={"brokers": gaps.rates_removed}))
        if waited_s >= SETTLE_S:
            status = await ctx.gateway.kafka_status(ctx.cluster)
            notes.append(f"{REMOVED_MARK}: {_what(gaps)}, {_who(status, gaps)}; "
                         f"set again at {ctx.clock.now():%H:%M:%S} UTC")
            return "; ".join(notes)
    if REMOVED_MARK in step.detail:
        notes.append(step.detail[step.detail.index(REMOVED_MARK):])
    return "; ".join(notes)
