"""The catalogue: every runbook started by its own verb (``RUNBOOKS``), and every step kind of every
runbook as one discriminated union, the one place it is assembled.

The undo is not in ``RUNBOOKS``: it is planned from a paused run, not from parameters, and created by
superseding that run (``handlers.commands.undo``), but its step kinds are in the union like any other.

A kind's arguments model lives with the runbook that plans it (or in ``step_args`` when several
runbooks plan it; the MirrorMaker 2 runbook's in ``mirror_step_args``, beside it); adding a kind is
adding its model to ``AnyStepArgs`` below and its executor to ``handlers.steps.registry`` (a test
holds the two lists equal). Stored runs are read through ``validate_run``, which gives pydantic the
union as the parser of every step's arguments (see ``runbooks.engine.models.StepArgs`` for why the
engine cannot name the union itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, get_args

from pydantic import Field, TypeAdapter

from runbooks.catalogue.config import CONFIG
from runbooks.catalogue.mirror import MIRROR
from runbooks.catalogue.mirror_manage import MirrorStateArgs, RemoveMirrorArgs
from runbooks.catalogue.mirror_restart import MIRROR_RESTART, RestartMirrorArgs
from runbooks.catalogue.mirror_step_args import (
    AwaitMirrorArgs,
    CreateMirrorArgs,
    MirrorCanaryArgs,
    MirrorPreflightArgs,
    VerifyCheckpointsArgs,
)
from runbooks.catalogue.rebalance_steps import CreateRebalanceArgs, RunRebalanceArgs, StopRebalanceArgs
from runbooks.catalogue.replace_broker import REPLACE_BROKER, ReplacePodAndPvcArgs
from runbooks.catalogue.replica_steps import (
    CancelMovesArgs,
    CatchUpArgs,
    ClearThrottlesArgs,
    MoveReplicasArgs,
    VerifyReplicasArgs,
)
from runbooks.catalogue.restart import RESTART, ElectLeadersArgs, PreflightArgs, RestartBrokerArgs
from runbooks.catalogue.runbook import Runbook
from runbooks.catalogue.scale import SCALE, AwaitPoolNodesArgs, PatchNodePoolArgs
from runbooks.catalogue.step_args import (
    AwaitOperatorArgs,
    ClusterCheckArgs,
    FollowRollArgs,
    PatchKafkaArgs,
    VerifyConfigArgs,
    VerifyUpgradeArgs,
)
from runbooks.catalogue.undo import RevertKafkaArgs
from runbooks.catalogue.upgrade import UPGRADE
from runbooks.engine.models import STEP_ARGS_PARSER, Run, StepArgs

RUNBOOKS: Mapping[str, Runbook[Any, Any]] = {
    r.verb: r for r in (RESTART, UPGRADE, CONFIG, REPLACE_BROKER, SCALE, MIRROR, MIRROR_RESTART)}

AnyStepArgs = (
    PreflightArgs
    | RestartBrokerArgs
    | ElectLeadersArgs
    | ClusterCheckArgs
    | PatchKafkaArgs
    | FollowRollArgs
    | AwaitOperatorArgs
    | VerifyUpgradeArgs
    | VerifyConfigArgs
    | RevertKafkaArgs
    | MoveReplicasArgs
    | CancelMovesArgs
    | ClearThrottlesArgs
    | CatchUpArgs
    | VerifyReplicasArgs
    | ReplacePodAndPvcArgs
    | PatchNodePoolArgs
    | AwaitPoolNodesArgs
    | CreateRebalanceArgs
    | RunRebalanceArgs
    | StopRebalanceArgs
    | MirrorPreflightArgs
    | CreateMirrorArgs
    | AwaitMirrorArgs
    | MirrorCanaryArgs
    | VerifyCheckpointsArgs
    | MirrorStateArgs
    | RemoveMirrorArgs
    | RestartMirrorArgs
)

_ADAPTER: TypeAdapter[AnyStepArgs] = TypeAdapter(Annotated[AnyStepArgs, Field(discriminator="kind")])


def kind_of(model: type[StepArgs]) -> str:
    """The kind a model's ``kind: Literal[...]`` field declares."""
    (kind,) = get_args(model.model_fields["kind"].annotation)
    return str(kind)


STEP_KINDS: Mapping[str, type[StepArgs]] = {kind_of(m): m for m in get_args(AnyStepArgs)}


def parse_step_args(raw: Any) -> StepArgs:
    """A step's arguments as the model of their kind; a ValidationError names an unknown kind or a bad field."""
    return _ADAPTER.validate_python(raw)


def validate_run(data: Mapping[str, Any]) -> Run:
    """A run from plain data (a stored record, already brought to the current schema)."""
    return Run.model_validate(data, context={STEP_ARGS_PARSER: parse_step_args})
