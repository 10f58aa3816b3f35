"""The step kinds several runbooks share: their typed arguments, and the builders of their steps.

The upgrade, config and undo runbooks all check the cluster (``cluster-check``), patch the Kafka
resource (``patch-kafka``), follow the operator's roll broker by broker (``follow-roll``), wait
for it to finish (``await-operator``) and verify (``verify-upgrade``, ``verify-config``). Kinds
only one runbook plans live in that runbook's module. Field names are the ones stored runs have
always used: a stored record's arguments read straight into these models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runbooks.engine.models import StepArgs, StepSpec
from runbooks.rules.health import ClusterSnapshot
from runbooks.rules.rolls import FOLLOW_TIMEOUT_S, BrokerPodState, roll_order


class SpecEdit(BaseModel):
    """One change under ``spec.kafka``; a value of None removes the key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: tuple[str, ...]
    value: Any = None


def edit(*path: str, value: Any) -> SpecEdit:
    return SpecEdit(path=path, value=value)


class ClusterCheckArgs(StepArgs):
    """Pre-flight of the upgrade and config runbooks (``handlers.steps.cluster``)."""

    kind: Literal["cluster-check"] = "cluster-check"
    kafka_version: str | None = None  # every broker must run it (None: not checked)
    brokers: tuple[int, ...] = ()  # the brokers expected live (empty: every pod's)


class PatchStatus(BaseModel):
    """What the Kafka status must show once the operator reconciled a patch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metadata_version: str | None = None


class KafkaPatchArgs(StepArgs):
    """The fields of every patch of ``spec.kafka`` (``patch-kafka`` and the undo's ``revert-kafka``)."""

    edits: tuple[SpecEdit, ...]
    expect: tuple[SpecEdit, ...] = ()  # preconditions: values the resource must still have
    expect_generation: int | None = None
    expect_pods: dict[str, str] | None = None  # broker -> the pod uid the plan saw
    wait: Literal["settled", "none"] = "settled"
    status: PatchStatus | None = None
    no_roll: bool = False  # report whether the operator restarted a broker (it should not have)


class PatchKafkaArgs(KafkaPatchArgs):
    kind: Literal["patch-kafka"] = "patch-kafka"


class RollExpectation(BaseModel):
    """What a rolled broker must show: the Kafka version its pod runs, or config values it reports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kafka_version: str | None = None
    config: dict[str, str] = Field(default_factory=dict)


class FollowRollArgs(StepArgs):
    """One broker of a roll the operator performs (``handlers.steps.roll``)."""

    kind: Literal["follow-roll"] = "follow-roll"
    broker: int
    pod: str
    uid: str  # the pod before the roll
    expect: RollExpectation = RollExpectation()
    may_skip_roll: bool = False
    settle_generation: int | None = None
    tolerate: tuple[int, ...] = ()  # an undo's: brokers down because of the change being undone
    down_at_plan: bool = False  # an undo's: this broker's old pod was already down


class AwaitOperatorArgs(StepArgs):
    kind: Literal["await-operator"] = "await-operator"
    kafka_version: str | None = None
    generation: int | None = None


class VerifyUpgradeArgs(StepArgs):
    kind: Literal["verify-upgrade"] = "verify-upgrade"
    kafka_version: str
    metadata_version: str | None = None
    config: dict[str, str] = Field(default_factory=dict)
    brokers: tuple[int, ...] = ()


class VerifyConfigArgs(StepArgs):
    kind: Literal["verify-config"] = "verify-config"
    set: dict[str, str] = Field(default_factory=dict)
    unset: tuple[str, ...] = ()
    dynamic: tuple[str, ...] = ()  # the keys Kafka applied live
    uids: dict[str, str] = Field(default_factory=dict)  # broker -> pod uid at plan time
    brokers: tuple[int, ...] = ()


def follow_steps(
    prefix: str,
    brokers: Sequence[BrokerPodState],
    snapshot: ClusterSnapshot | None,
    *,
    what: str,
    expect: RollExpectation,
    may_skip_roll: bool = False,
    settle_generation: int | None = None,
    timeout_s: float = FOLLOW_TIMEOUT_S,
    in_given_order: bool = False,
) -> list[StepSpec]:
    """One automatic step per broker, in the operator's order, each waiting for that broker to be
    rolled (new uid + ``expect`` met), Ready, back in the ISR of all its partitions and 0 URP.

    ``may_skip_roll``: the operator may apply the change without a restart (a config key it can
    set live), in which case the step is done once it has reconciled ``settle_generation`` with
    this pod untouched. ``in_given_order`` (an undo): the brokers are already in the operator's
    order (the broken ones first), and each step tolerates the brokers of the steps after it being
    down, and its own broker's old pod if it was down when planned: they are broken by the change
    being undone, not by this roll.
    """
    ordered = list(brokers) if in_given_order else roll_order(snapshot, brokers)
    controller = snapshot.active_controller if snapshot is not None else None
    steps = []
    for position, broker in enumerate(ordered, start=1):
        role = " (active controller)" if broker.id == controller else ""
        args = FollowRollArgs(
            broker=broker.id, pod=broker.pod, uid=broker.uid, expect=expect, may_skip_roll=may_skip_roll,
            settle_generation=settle_generation,
            tolerate=tuple(b.id for b in ordered[position:]) if in_given_order else (),
            down_at_plan=in_given_order and not broker.ready)
        steps.append(StepSpec(
            id=f"{prefix}-{broker.id}",
            title=f"Broker {broker.id}{role}: {what}",
            args=args,
            needs_approval=False,
            timeout_s=timeout_s,
            summary=(f"{position} of {len(ordered)}: the operator restarts pod {broker.pod}; the run waits for a new "
                     "pod, Ready, back in ISR and 0 URP, and pauses if it does not come back or the cluster is "
                     "sick beyond this broker."),
        ))
    return steps
