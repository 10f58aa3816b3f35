"""What every step executor shares: its context, its results, and the error that pauses a run.

Kept apart from the executors so each runbook's executors live in their own module and
``handlers.steps.registry`` can register them all without an import cycle.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from handlers.ports import Clock, ClusterGateway, ClusterRef, KafkaAdmin
from runbooks.engine.models import Step


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

    async def bootstrap(self) -> str:
        if self.cluster.bootstrap_servers:
            return self.cluster.bootstrap_servers
        status = await self.gateway.kafka_status(self.cluster)
        if not status.bootstrap_servers:
            raise StepError(f"the Kafka resource {self.cluster.kafka} reports no listener address yet")
        return status.bootstrap_servers


class StepExecutor(Protocol):
    async def gate(self, ctx: StepContext, step: Step) -> GateResult: ...

    async def observe(self, ctx: StepContext, step: Step) -> dict[str, Any]: ...

    async def act(self, ctx: StepContext, step: Step) -> str: ...

    async def done(self, ctx: StepContext, step: Step) -> DoneResult: ...


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
