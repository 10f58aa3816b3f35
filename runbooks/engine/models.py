"""Runs, steps, approvals and audit entries: the records the engine decides over and Redis keeps.

Runs are immutable values: ``decide()`` returns a new run, never mutates one, so a refused event
provably changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationInfo, field_validator


class RunState(StrEnum):
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    WAITING = "waiting"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.ABORTED})


class StepState(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    WAITING = "waiting"
    PAUSED = "paused"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    ABORTED = "aborted"


class StepPhase(StrEnum):
    """Where a RUNNING step is: checking its gate, or applying its action."""

    GATE = "gate"
    ACT = "act"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Actor(_Frozen):
    """Who did something: a Slack user id (with the user groups they belong to) or a console id."""

    id: str
    groups: tuple[str, ...] = ()


class ApprovalPolicy(_Frozen):
    """Who may approve a cluster's steps. Snapshotted into each run when it is created, so a run
    is judged by the rules it was started under and the audit trail can show them."""

    approvers: tuple[str, ...] = ()
    approver_groups: tuple[str, ...] = ()
    four_eyes: bool = True  # the requester may not approve their own run's steps
    approvals_required: int = Field(default=1, ge=1)
    approval_timeout_s: float = Field(default=1800.0, gt=0)


class Approval(_Frozen):
    by: str
    at: datetime
    nonce: str
    plan_hash: str


class ApprovalRequest(_Frozen):
    step_id: str
    nonce: str
    plan_hash: str
    requested_at: datetime
    expires_at: datetime
    approvals: tuple[Approval, ...] = ()
    required: int = 1


class PlanRefused(Exception):
    """A runbook's plan cannot be made; the message tells the user why and what would be valid.
    The one refusal every runbook raises, whatever it plans."""


class StepArgs(_Frozen):
    """The base of every step kind's arguments: ``kind`` names the executor the worker runs.

    Why a base class here and the concrete models elsewhere: each kind's model (``kind:
    Literal[...]`` and typed fields) belongs to the runbook that plans it, in ``runbooks.catalogue``,
    and the engine sits below the catalogue (it may not import it). The engine never reads an
    argument; it only carries them. So ``StepSpec.args`` is typed as this base, the catalogue
    assembles the discriminated union of the concrete models (``runbooks.catalogue.steps``), and:

    - a plan builds its steps from the concrete models, so mypy checks every field it sets;
    - the executors' registry (``handlers.steps.registry``) hands each executor the args of exactly
      its model (an isinstance check), so mypy checks every field an executor reads;
    - stored runs are read back through the union (``runbooks.catalogue.steps.validate_run``, given
      to pydantic as the validation context ``STEP_ARGS_PARSER``), never as this bare base: a
      document without the parser is refused instead of silently losing its arguments.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str


# The validation context key under which the catalogue passes its parser of step arguments.
STEP_ARGS_PARSER = "step_args_parser"
StepArgsParser = Callable[[Any], StepArgs]


class StepSpec(_Frozen):
    """What a runbook's plan says about one step. ``args.kind`` names the executor the worker runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # a field this model has not is a record misread

    id: str
    title: str
    args: SerializeAsAny[StepArgs]
    needs_approval: bool = True
    approvals_required: int | None = None  # None: the cluster policy's number
    skippable: bool = False
    timeout_s: float = 600.0
    compensation: str | None = None  # what undoing this step would mean; offered, never run silently
    # A cleanup step runs however the run ends: on abort (and on an abort after a pause or a
    # failure) the steps before it that have not run are skipped and it runs by itself, without
    # approval, before the run is ABORTED. For the one compensation whose absence is the harm
    # (a replication throttle left on, a reassignment left in flight).
    cleanup: bool = False
    # An abort may stop this step while its action is in flight, instead of waiting for it, when a
    # cleanup step follows that undoes it safely (a partition move, which cancel-moves cancels).
    interruptible: bool = False
    summary: str = ""  # what the approver must know, shown with the buttons

    @property
    def kind(self) -> str:
        return self.args.kind

    @field_validator("args", mode="before")
    @classmethod
    def _typed_args(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, StepArgs):
            return value
        context = info.context if isinstance(info.context, Mapping) else {}
        parser = context.get(STEP_ARGS_PARSER)
        if parser is None:
            raise ValueError("step arguments given as plain data need the catalogue's parser: build them from their "
                             "model, or read a stored run with runbooks.catalogue.steps.validate_run")
        return parser(value)


class Step(_Frozen):
    spec: StepSpec
    state: StepState = StepState.PENDING
    phase: StepPhase | None = None
    attempt: int = 0
    observed: dict[str, Any] = Field(default_factory=dict)
    applied: bool = False
    detail: str = ""
    findings: tuple[str, ...] = ()
    started_at: datetime | None = None
    deadline: datetime | None = None
    finished_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def attempt_started_at(self) -> datetime | None:
        """When this attempt of the step began (its start, or the last Retry): every attempt's
        deadline is its start plus the step's timeout."""
        if self.deadline is None:
            return self.started_at
        return self.deadline - timedelta(seconds=self.spec.timeout_s)


class Run(_Frozen):
    id: str
    runbook: str
    cluster: str
    params: dict[str, Any] = Field(default_factory=dict)
    requested_by: str
    channel: str | None = None
    created_at: datetime
    updated_at: datetime
    state: RunState = RunState.PLANNED
    steps: tuple[Step, ...]
    current: int = 0
    plan_hash: str
    policy: ApprovalPolicy
    approval: ApprovalRequest | None = None
    pause_reason: str | None = None
    abort_requested_by: str | None = None
    outcome: str | None = None
    finished_at: datetime | None = None
    fencing_token: int | None = None  # the cluster lock's token when the run was created

    @property
    def current_step(self) -> Step | None:
        if 0 <= self.current < len(self.steps):
            return self.steps[self.current]
        return None

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def with_step(self, index: int, step: Step) -> tuple[Step, ...]:
        return (*self.steps[:index], step, *self.steps[index + 1:])


class AuditEntry(_Frozen):
    """One line of a run's append-only history: who, what, when, from-state, to-state."""

    at: datetime
    run_id: str
    actor: str
    action: str
    from_state: RunState
    to_state: RunState
    step_id: str | None = None
    detail: str = ""


def plan_hash(steps: list[StepSpec] | tuple[StepSpec, ...]) -> str:
    """A short stable hash of a plan: an approval is only valid for the plan it was shown."""
    canonical = json.dumps(
        [s.model_dump(mode="json", exclude={"summary"}) for s in steps], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
