"""Step executors: the I/O half of each step kind, over the ports only, registered by kind.

Each kind answers four questions the worker asks: is it safe to start (``gate``), what does the
world look like before acting (``observe``, recorded in the run before the action), do it
(``act``, idempotent: expressed as a desired state with a precondition), and is it done
(``done``, read from the world; asked first on every resume). Executors live one module per step
family (``restart``, ``cluster``, ``roll``, ``verify``, ``undo``) and take their kind's typed
arguments; ``EXECUTORS`` maps every kind of ``runbooks.catalogue.steps.AnyStepArgs`` to its
executor, adapted to the worker's call shape (``EXECUTORS[step.spec.kind].gate(ctx, step)``).
"""

from __future__ import annotations

from collections.abc import Mapping

from handlers.steps.base import (
    ArgsT,
    DoneResult,
    GateResult,
    KindEntry,
    KindExecutor,
    Registered,
    StepContext,
    StepError,
    StepExecutor,
)
from handlers.steps.cluster import AwaitOperatorStep, ClusterCheckStep, PatchKafkaStep
from handlers.steps.mirror import (
    AwaitMirrorStep,
    CreateMirrorStep,
    MirrorCanaryStep,
    MirrorPreflightStep,
    VerifyCheckpointsStep,
)
from handlers.steps.mirror_manage import MirrorStateStep, RemoveMirrorStep
from handlers.steps.mirror_restart import RestartMirrorStep
from handlers.steps.node_pools import AwaitPoolNodesStep, PatchNodePoolStep, ReplacePodAndPvcStep
from handlers.steps.rebalance import CreateRebalanceStep, RunRebalanceStep, StopRebalanceStep
from handlers.steps.replicas import (
    CancelMovesStep,
    CatchUpStep,
    ClearThrottlesStep,
    MoveReplicasStep,
    VerifyReplicasStep,
)
from handlers.steps.restart import ElectLeadersStep, PreflightStep, RestartBrokerStep
from handlers.steps.roll import FollowRollStep
from handlers.steps.undo import RevertKafkaStep
from handlers.steps.verify import VerifyConfigStep, VerifyUpgradeStep
from runbooks.catalogue.mirror_manage import MirrorStateArgs, RemoveMirrorArgs
from runbooks.catalogue.mirror_restart import RestartMirrorArgs
from runbooks.catalogue.mirror_step_args import (
    AwaitMirrorArgs,
    CreateMirrorArgs,
    MirrorCanaryArgs,
    MirrorPreflightArgs,
    VerifyCheckpointsArgs,
)
from runbooks.catalogue.rebalance_steps import CreateRebalanceArgs, RunRebalanceArgs, StopRebalanceArgs
from runbooks.catalogue.replace_broker import ReplacePodAndPvcArgs
from runbooks.catalogue.replica_steps import (
    CancelMovesArgs,
    CatchUpArgs,
    ClearThrottlesArgs,
    MoveReplicasArgs,
    VerifyReplicasArgs,
)
from runbooks.catalogue.restart import ElectLeadersArgs, PreflightArgs, RestartBrokerArgs
from runbooks.catalogue.scale import AwaitPoolNodesArgs, PatchNodePoolArgs
from runbooks.catalogue.step_args import (
    AwaitOperatorArgs,
    ClusterCheckArgs,
    FollowRollArgs,
    PatchKafkaArgs,
    VerifyConfigArgs,
    VerifyUpgradeArgs,
)
from runbooks.catalogue.steps import kind_of
from runbooks.catalogue.undo import RevertKafkaArgs

__all__ = ["EXECUTORS", "REGISTERED", "DoneResult", "GateResult", "StepContext", "StepError", "StepExecutor"]


def _table(*entries: KindEntry) -> dict[str, KindEntry]:
    table: dict[str, KindEntry] = {}
    for entry in entries:
        kind = kind_of(entry.model)
        if kind in table:
            raise ValueError(f"step kind {kind} has two executors")
        table[kind] = entry
    return table


def register(model: type[ArgsT], executor: KindExecutor[ArgsT]) -> KindEntry:
    """Where mypy checks that ``executor`` takes exactly the arguments ``model`` declares."""
    return Registered(model, executor)


REGISTERED: Mapping[str, KindEntry] = _table(
    # the rolling restart
    register(PreflightArgs, PreflightStep()),
    register(RestartBrokerArgs, RestartBrokerStep()),
    register(ElectLeadersArgs, ElectLeadersStep()),
    # the upgrade and config runbooks
    register(ClusterCheckArgs, ClusterCheckStep()),
    register(PatchKafkaArgs, PatchKafkaStep()),
    register(FollowRollArgs, FollowRollStep()),
    register(AwaitOperatorArgs, AwaitOperatorStep()),
    register(VerifyUpgradeArgs, VerifyUpgradeStep()),
    register(VerifyConfigArgs, VerifyConfigStep()),
    # the undo of a paused config change or upgrade (its other steps are the kinds above)
    register(RevertKafkaArgs, RevertKafkaStep()),
    # moving replicas (replace-broker, scale)
    register(MoveReplicasArgs, MoveReplicasStep()),
    register(CancelMovesArgs, CancelMovesStep()),
    register(ClearThrottlesArgs, ClearThrottlesStep()),
    register(CatchUpArgs, CatchUpStep()),
    register(VerifyReplicasArgs, VerifyReplicasStep()),
    # nodes through Strimzi (replace-broker, scale)
    register(ReplacePodAndPvcArgs, ReplacePodAndPvcStep()),
    register(PatchNodePoolArgs, PatchNodePoolStep()),
    register(AwaitPoolNodesArgs, AwaitPoolNodesStep()),
    # Cruise Control's KafkaRebalance (replace-broker, scale with --engine cruise-control)
    register(CreateRebalanceArgs, CreateRebalanceStep()),
    register(RunRebalanceArgs, RunRebalanceStep()),
    register(StopRebalanceArgs, StopRebalanceStep()),
    # MirrorMaker 2: set up and proven, then paused, resumed, removed
    register(MirrorPreflightArgs, MirrorPreflightStep()),
    register(CreateMirrorArgs, CreateMirrorStep()),
    register(AwaitMirrorArgs, AwaitMirrorStep()),
    register(MirrorCanaryArgs, MirrorCanaryStep()),
    register(VerifyCheckpointsArgs, VerifyCheckpointsStep()),
    register(MirrorStateArgs, MirrorStateStep()),
    register(RemoveMirrorArgs, RemoveMirrorStep()),
    # a FAILED MirrorMaker 2 connector or task (mirror-restart, an alert's button)
    register(RestartMirrorArgs, RestartMirrorStep()),
)
EXECUTORS: Mapping[str, StepExecutor] = REGISTERED
