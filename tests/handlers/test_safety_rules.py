"""The safety rules of the use-case layer, each held by a direct test (issue 12 §5).

- a broker restart counts as done only with a new pod uid, the pod Ready and the broker back in the
  ISR: asked of the step executors directly (the bot's own restart and the rolls it follows), over
  the in-memory Strimzi with its operator not running, so the test sets exactly what Kubernetes and
  Kafka report; each of the three missing keeps the step not done;
- the worker acts only with the current fencing token: through the real worker and real Redis, a
  run whose token is no longer the cluster lock's pauses instead of acting;
- an approval carries the nonce of the button that was clicked, never the current one: through the
  real service and Redis, a click with a stale nonce is refused while another request is current.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot import store
from handlers.steps.base import DoneResult
from runbooks.engine.models import RunState, Step
from tests.fakes.strimzi import FakeStrimzi
from tests.handlers.test_change_runbooks import APPROVER
from tests.handlers.test_harm_pause import T, check, cluster, restarted, waiting

# -- a restart is done only with a new pod, Ready, back in the ISR ---------------------------------

BROKER = 1


def _restart_step(fake: FakeStrimzi) -> Step:
    """The bot's own restart, annotated: it recorded the pod's uid before asking Strimzi to roll it."""
    pod = f"prod-kafka-{BROKER}"
    return waiting("restart-broker", {"broker": BROKER, "pod": pod}, attempt_at=T,
                   observed={"pod": pod, "uid_before": fake.pods[BROKER].uid})


def _follow_step(fake: FakeStrimzi) -> Step:
    """A broker of a roll the operator performs; the plan saw this pod's uid."""
    return waiting("follow-roll", {"broker": BROKER, "pod": f"prod-kafka-{BROKER}", "uid": fake.pods[BROKER].uid,
                                   "expect": {}, "may_skip_roll": False, "settle_generation": None}, attempt_at=T)


def _same_pod(fake: FakeStrimzi) -> None:
    """Nothing restarted: the old pod, Ready, in the ISR."""


def _new_pod_not_ready(fake: FakeStrimzi) -> None:
    """A new pod that is not Ready yet, while Kafka still lists the broker in the ISR (it notices late)."""
    restarted(fake, BROKER, T)
    fake.isr_view[BROKER] = True


def _new_pod_ready_out_of_isr(fake: FakeStrimzi) -> None:
    """A new pod, Ready, whose broker has not caught up into the ISR yet."""
    restarted(fake, BROKER, T)
    fake.pods[BROKER].ready, fake.pods[BROKER].ready_since = True, T
    fake.isr_view[BROKER] = False


def _new_pod_ready_in_isr(fake: FakeStrimzi) -> None:
    restarted(fake, BROKER, T)
    fake.pods[BROKER].ready, fake.pods[BROKER].ready_since = True, T


MAKE_STEP: dict[str, Callable[[FakeStrimzi], Step]] = {"restart-broker": _restart_step, "follow-roll": _follow_step}
NOT_DONE = [
    ("same pod uid", _same_pod, {"restart-broker": "waiting for Strimzi to restart the pod",
                                 "follow-roll": "waiting for the operator to restart it"}),
    ("new pod not Ready", _new_pod_not_ready, {"restart-broker": "new pod started, not Ready yet",
                                               "follow-roll": "new pod started, not Ready yet"}),
    ("new pod Ready, out of ISR", _new_pod_ready_out_of_isr, {"restart-broker": "rejoining ISR",
                                                              "follow-roll": "rejoining ISR"}),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", sorted(MAKE_STEP))
@pytest.mark.parametrize(("name", "world", "waits_for"), NOT_DONE, ids=[c[0] for c in NOT_DONE])
async def test_a_restart_is_not_done_while_any_of_the_three_is_missing(
        kind: str, name: str, world: Callable[[FakeStrimzi], None], waits_for: dict[str, str]) -> None:
    """New uid, Ready, back in the ISR: with any one missing the step is not done (and not failed), and
    its detail says which one it waits for."""
    fake, clock = cluster(starts={0: 20.0, 1: 20.0, 2: 20.0})
    step = MAKE_STEP[kind](fake)
    world(fake)
    result = await check(fake, clock, step)
    assert not result.done, result.detail
    assert result.failure is None
    assert waits_for[kind] in result.detail, result.detail


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", sorted(MAKE_STEP))
async def test_a_restart_is_done_with_a_new_pod_ready_and_back_in_the_isr(kind: str) -> None:
    """All three together (and so 0 URP): the step is done."""
    fake, clock = cluster(starts={0: 20.0, 1: 20.0, 2: 20.0})
    step = MAKE_STEP[kind](fake)
    _new_pod_ready_in_isr(fake)
    result: DoneResult = await check(fake, clock, step)
    assert result.done, result.detail
    assert "back in ISR" in result.detail


@pytest.mark.timeout(10)
async def test_a_restart_is_not_done_without_a_pod() -> None:
    """The operator deleted the pod and has not created the new one yet: not done."""
    fake, clock = cluster(starts={0: 20.0, 1: 20.0, 2: 20.0})
    step = _restart_step(fake)
    del fake.pods[BROKER]
    result = await check(fake, clock, step)
    assert not result.done and "waiting for Strimzi to restart the pod" in result.detail


# -- the fencing token ----------------------------------------------------------------------------

@pytest.mark.timeout(60)
async def test_a_run_whose_token_is_no_longer_the_locks_does_not_act(make_bot: Any, redis_url: str) -> None:
    """The cluster lock passed to another run while this one waited for approval (an operator freed it
    by hand, say). Approved now, the run must not patch the Kafka resource with its stale token: it
    pauses saying it no longer holds the lock, and the spec is untouched."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake)
    reply = await bot.say("config prod set log.retention.ms=3600000")
    assert reply.run is not None, reply.text
    run_id = reply.run.id
    waiting_run = await bot.drive(run_id, approve=False, until=lambda r: r.state is RunState.AWAITING_APPROVAL)
    assert waiting_run.fencing_token is not None
    client = await store.connect(redis_url)
    try:
        locks = store.ClusterLock(client)
        assert await locks.release("prod", run_id)
        newer = await locks.acquire("prod", "r-0other00")
        assert newer is not None and newer > waiting_run.fencing_token
        run = await bot.drive(run_id, until=lambda r: r.state in (RunState.PAUSED, RunState.SUCCEEDED)
                              or r.state.terminal)
        assert run.state is RunState.PAUSED, run.state
        assert "no longer holds the cluster lock" in (run.pause_reason or "")
        assert "log.retention.ms" not in fake.spec["config"]
        assert fake.generation == 1
    finally:
        await client.aclose()


# -- the nonce of the clicked button --------------------------------------------------------------

@pytest.mark.timeout(60)
async def test_a_button_with_a_stale_nonce_is_refused_while_another_request_is_current(make_bot: Any) -> None:
    """The click carries its own nonce to the engine: a card shown for an earlier request (its nonce)
    is refused as stale although the step is waiting for approval now; the current card's button
    approves it."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake)
    reply = await bot.say("config prod set log.retention.ms=3600000")
    assert reply.run is not None, reply.text
    run = await bot.drive(reply.run.id, approve=False, until=lambda r: r.state is RunState.AWAITING_APPROVAL)
    request = run.approval
    assert request is not None

    stale = await bot.service.actions.approve(run.id, APPROVER, step_id=request.step_id,
                                              nonce=f"{request.nonce}-earlier", plan_hash=request.plan_hash)
    assert not stale.ok
    assert "stale" in stale.text, stale.text
    after = await bot.run(run.id)
    assert after.state is RunState.AWAITING_APPROVAL and after.approval == request
    assert [e.detail.split(":")[0] for e in await bot.runs.audit(run.id) if e.action == "approve_refused"] == [
        "stale"]

    current = await bot.service.actions.approve(run.id, APPROVER, step_id=request.step_id, nonce=request.nonce,
                                                plan_hash=request.plan_hash)
    assert current.ok, current.text
    assert current.run is not None and current.run.state is not RunState.AWAITING_APPROVAL
