"""The contract between plans and executors: every step kind a plan can hold has exactly one
executor, every executor's kind is one a plan can hold, and an executor never runs on another
kind's arguments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.ports import ClusterRef
from handlers.steps.base import StepContext, StepError
from handlers.steps.registry import EXECUTORS, REGISTERED
from runbooks.catalogue.restart import PreflightArgs, RestartBrokerArgs
from runbooks.catalogue.steps import STEP_KINDS
from runbooks.engine.models import Step, StepSpec
from tests.fakes.strimzi import FakeStrimzi

pytestmark = pytest.mark.timeout(5)


def test_every_kind_of_the_union_has_exactly_one_executor_and_every_executor_a_kind() -> None:
    assert set(EXECUTORS) == set(STEP_KINDS)
    assert {kind: entry.model for kind, entry in REGISTERED.items()} == dict(STEP_KINDS)


class _Clock:
    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC)


async def test_an_executor_given_another_kinds_arguments_fails_the_step_saying_so() -> None:
    """A step whose arguments are not its executor's model is a plan/executor mismatch: a permanent
    error naming both types, never an executor reading fields that are not there."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    ctx = StepContext(cluster=ClusterRef(name="prod", namespace="kafka", kafka="prod"), gateway=fake, admin=fake,
                      clock=_Clock())
    step = Step(spec=StepSpec(id="restart-1", title="t", args=PreflightArgs()))
    with pytest.raises(StepError) as caught:
        await REGISTERED["restart-broker"].gate(ctx, step)
    assert caught.value.permanent
    assert str(caught.value) == ("step restart-1 (preflight) has arguments of type PreflightArgs, but its executor "
                                 "takes RestartBrokerArgs: the plan and the executors disagree")
    ok = Step(spec=StepSpec(id="restart-1", title="t", args=RestartBrokerArgs(broker=1, pod="prod-kafka-1")))
    assert (await REGISTERED["restart-broker"].observe(ctx, ok))["uid_before"] == fake.pods[1].uid
