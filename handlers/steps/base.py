"""What every step executor shares: its context, its results, the error that pauses a run, and the
typed shape of an executor with the adapter that registers it.

Kept apart from the executors so each step family's executors live in their own module and
``handlers.steps.registry`` can register them all without an import cycle.

An executor is written for one arguments model (``KindExecutor[RestartBrokerArgs]``): each method
gets the step and its arguments as that model, so mypy checks every field it reads against what
the plan sets. ``Registered`` adapts it to the worker's call shape (``StepExecutor``: ctx and step
only), narrowing ``step.spec.args`` with isinstance first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from handlers.mirror_ports import MirrorCanary, MirrorMakers
from handlers.ports import Clock, ClusterGateway, ClusterRef, KafkaAdmin
from handlers.rebalances import KafkaRebalances
from runbooks.engine.models import Step, StepArgs


class StepError(Exception):
    """An action failed. ``permanent`` errors fail the run; the others pause it for a human."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class GateResult:
    ok: bool
    findings: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class DoneResult:
    done: bool
    detail: str = ""
    failure: str | None = None


@dataclass(frozen=True)
class StepContext:
    cluster: ClusterRef
    gateway: ClusterGateway
    admin: KafkaAdmin
    clock: Clock  # the worker's: a step that measures how long a broker has been down reads it here
    rebalances: KafkaRebalances | None = None  # Cruise Control's KafkaRebalances (--engine cruise-control)
    run_id: str = ""  # names what a run creates (its KafkaRebalances)
    # Every managed cluster, for a run that reads another one than its own (a mirror's source).
    clusters: Mapping[str, ClusterRef] = field(default_factory=dict)
    mirror_makers: MirrorMakers | None = None  # KafkaMirrorMaker2 resources (the mirror runbook)
    canary: MirrorCanary | None = None  # the mirror runbook's Kafka clients (canary, checkpoints)

    async def bootstrap(self, cluster: ClusterRef | None = None) -> str:
        """The bootstrap address of the run's cluster, or of ``cluster``."""
        ref = cluster or self.cluster
        if ref.bootstrap_servers:
            return ref.bootstrap_servers
        status = await self.gateway.kafka_status(ref)
        if not status.bootstrap_servers:
            raise StepError(status.bootstrap_problem
                            or f"the Kafka resource {ref.kafka} reports no listener address yet")
        return status.bootstrap_servers

    def other(self, name: str) -> ClusterRef:
        """Another managed cluster by name (a mirror's source); a permanent error when it is gone."""
        ref = self.clusters.get(name)
        if ref is None:
            raise StepError(f"cluster {name} is no longer in the configuration", permanent=True)
        return ref


class StepExecutor(Protocol):
    async def gate(self, ctx: StepContext, step: Step) -> GateResult: ...

    async def observe(self, ctx: StepContext, step: Step) -> dict[str, Any]: ...

    async def act(self, ctx: StepContext, step: Step) -> str: ...

    async def done(self, ctx: StepContext, step: Step) -> DoneResult: ...


ArgsT = TypeVar("ArgsT", bound=StepArgs)
ArgsT_contra = TypeVar("ArgsT_contra", bound=StepArgs, contravariant=True)


class KindExecutor(Protocol[ArgsT_contra]):
    """The executor of one step kind, given that kind's typed arguments."""

    async def gate(self, ctx: StepContext, step: Step, args: ArgsT_contra) -> GateResult: ...

    async def observe(self, ctx: StepContext, step: Step, args: ArgsT_contra) -> dict[str, Any]: ...

    async def act(self, ctx: StepContext, step: Step, args: ArgsT_contra) -> str: ...

    async def done(self, ctx: StepContext, step: Step, args: ArgsT_contra) -> DoneResult: ...


class KindEntry(StepExecutor, Protocol):
    """An executor as the registry holds it: the worker's call shape, and the model it takes."""

    @property
    def model(self) -> type[StepArgs]: ...


class Registered(Generic[ArgsT]):
    """A ``KindExecutor`` in the worker's call shape: it hands the executor ``step.spec.args`` only
    if they are of its model, and fails the step, saying so, if a plan gave the kind other args."""

    def __init__(self, model: type[ArgsT], executor: KindExecutor[ArgsT]) -> None:
        self.model = model
        self.executor = executor

    def _args(self, step: Step) -> ArgsT:
        args = step.spec.args
        if not isinstance(args, self.model):
            raise StepError(f"step {step.id} ({step.spec.kind}) has arguments of type {type(args).__name__}, but its "
                            f"executor takes {self.model.__name__}: the plan and the executors disagree",
                            permanent=True)
        return args

    async def gate(self, ctx: StepContext, step: Step) -> GateResult:
        return await self.executor.gate(ctx, step, self._args(step))

    async def observe(self, ctx: StepContext, step: Step) -> dict[str, Any]:
        return await self.executor.observe(ctx, step, self._args(step))

    async def act(self, ctx: StepContext, step: Step) -> str:
        return await self.executor.act(ctx, step, self._args(step))

    async def done(self, ctx: StepContext, step: Step) -> DoneResult:
        return await self.executor.done(ctx, step, self._args(step))


async def tolerant(check: Awaitable[DoneResult], what: str) -> DoneResult:
    """A done-check that a Kafka or Kubernetes hiccup turns into "not yet" instead of an error.

    The worker asks ``done`` first when it is about to act, and an exception there pauses the run
    at once; a broker that is restarting makes exactly such hiccups. Waiting is right: the step's
    deadline still pauses the run, with this text as the last thing seen. StepError is a verdict,
    not a hiccup, and passes through.
    """
    try:
        return await check
    except StepError:
        raise
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        return DoneResult(done=False, detail=f"{what}: could not check yet ({text[:200]})")
