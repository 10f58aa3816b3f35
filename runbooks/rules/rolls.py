"""Following a roll that Strimzi performs by itself: the order and texts of the per-broker steps the
upgrade, config and undo runbooks share (``runbooks.catalogue.step_args.follow_steps`` builds them),
and the one decision they embody.

**Why the roll is approved once, and each broker is gated, not approved.** A change of
``spec.kafka.version`` or of a non-dynamic ``spec.kafka.config`` key makes the operator roll every
broker inside *one* reconciliation (KafkaRoller, docs/strimzi.md §3): it restarts a pod, waits for it to
be Ready, checks ``KafkaAvailability.canRoll`` for the next and goes on. Nothing the bot can do
through the API holds it between two brokers:

- ``strimzi.io/pause-reconciliation`` is read when a reconciliation *starts*; the one rolling
  carries on to the last pod (set before the patch, it stops the roll from ever starting);
- the only other levers are deleting pods (docs/design.md §4 forbids it) or making canRoll fail on
  purpose, which is sabotage of the operator's safety net, not an approval.

A "Approve broker 2" button that does not actually hold broker 2 would tell the approver they
control something they do not. So the approver approves *the roll*, seeing the whole per-broker
plan first (order, and what each broker's restart puts at risk right now); the card then shows one
step per broker, each with its own health gate and deadline. What keeps the roll from going on
over a sick cluster is, first, Strimzi's own canRoll (the same rule as the bot's ``can_restart``),
and second, the run: it pauses the moment a broker does not come back, another broker crashes, or
the cluster is sick beyond the broker being rolled, and none of its later steps (the next patch,
the metadata raise) happens before a human chooses Retry or Abort.

A broker counts as rolled when its pod has a uid other than the one the plan saw *and* it shows
what the roll was for (the ``strimzi.io/kafka-version`` annotation, or the broker's own
DescribeConfigs value for a restart-only key): the uid proves a restart, the value proves it is
the restart of *this* roll, which matters when one plan holds several rolls (ZooKeeper upgrades).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from runbooks.rules.health import ClusterSnapshot, can_restart, restart_order

FOLLOW_TIMEOUT_S = 600.0  # the operator may first wait out its canRoll back-off (~2 min), then Ready
SETTLE_TIMEOUT_S = 600.0


class BrokerPodState(BaseModel):
    """A broker pod as the planners see it (the pure twin of the port's ``BrokerPod``)."""

    model_config = ConfigDict(frozen=True)

    id: int
    pod: str
    uid: str
    ready: bool = True
    kafka_version: str | None = None
    restart_count: int = 0
    stuck: bool = False  # crash-looping, or a container Kubernetes cannot run
    state: str = ""  # what Kubernetes says about it when it is not Ready


def roll_order(snapshot: ClusterSnapshot | None, brokers: Sequence[BrokerPodState]) -> list[BrokerPodState]:
    """The order Strimzi rolls brokers in: by id, the active controller last."""
    by_id = {b.id: b for b in brokers}
    ids = sorted(by_id)
    order = restart_order(snapshot, ids) if snapshot is not None else ids
    return [by_id[i] for i in order]


def risk_lines(snapshot: ClusterSnapshot | None, brokers: Sequence[BrokerPodState]) -> str:
    """What restarting each broker would put at risk right now, for the approval message."""
    if snapshot is None:
        return "At risk: unknown (Kafka did not answer)."
    risky = []
    for broker in brokers:
        check = can_restart(snapshot, broker.id)
        if not check.ok:
            risky.append(f"broker {broker.id}: {check.summary()}")
    if not risky:
        total = len(snapshot.partitions)
        return f"At risk: none ({total} partitions, every restart keeps each one at or above min ISR)."
    return "At risk: " + "; ".join(risky)


def roll_summary(brokers: Sequence[BrokerPodState], snapshot: ClusterSnapshot | None, change: str) -> str:
    """The approval text of a step that makes Strimzi roll every broker."""
    order = ", ".join(str(b.id) for b in roll_order(snapshot, brokers))
    return (f"{change} Strimzi then restarts every broker itself, one at a time, in the order {order}. "
            "Approving this approves the whole roll: the operator cannot be held between brokers, so each "
            "broker below is a health gate, not a separate approval; the run pauses at the first broker that "
            f"does not come back. {risk_lines(snapshot, brokers)}")
