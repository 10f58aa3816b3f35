"""The advisory risk on a waiting approval follows the cluster: when a broker drops out of the ISR
while the step waits, the card stops saying "At risk: none" within the re-check interval and shows
the partition now at risk and when that was checked. Real Bolt dispatch, Redis, engine worker and
card publisher; the cluster is the in-memory fake at the ports."""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.slack.blocks import APPROVE_ACTION
from runbooks.engine.models import RunState
from tests.fakes.cluster import APPROVER, FakeCluster, managed
from tests.fixtures.waiting import wait_for
from tests.slack.harness import in_process_bot
from tests.slack.payloads import card_text
from tests.slack.stub_web_api import StubWebApi
from tests.slack.test_flow import CLUSTER, start_restart

RECHECK_S = 0.5
CHECKED = re.compile(r"\(checked \d\d:\d\d:\d\d UTC\)")

pytestmark = pytest.mark.timeout(60)


async def test_a_broker_dropping_out_while_an_approval_waits_updates_the_risk_on_the_card(
        redis_url: str, slack_api: StubWebApi) -> None:
    """Restart of broker 1 waits for approval with "At risk: none"; broker 0 then falls out of the
    ISR of orders-0 (min ISR 2): the card shows orders-0 at risk, with the time of the check. The
    approval request is the same one (its button still works)."""
    fake = FakeCluster()
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, fake,
                              advisory_recheck_s=RECHECK_S) as bot:
        run_id = await start_restart(bot, brokers="1")
        button = await bot.approve_button(run_id, "restart-1")
        before = await bot.run(run_id)
        step = before.current_step
        assert step is not None and "At risk: none" in step.detail and CHECKED.search(step.detail), step.detail
        fake.under_replicated = True  # broker 0 drops out of orders-0's ISR

        async def refreshed() -> str | None:
            text = card_text((await bot.card(run_id)).blocks)
            return text if "orders-0" in text and "At risk: none" not in text else None

        text = await wait_for(refreshed, timeout=10, message="the card to show orders-0 at risk")
        assert CHECKED.search(text), text
        after = await bot.run(run_id)
        assert after.state is RunState.AWAITING_APPROVAL and after.approval == before.approval
        assert (await bot.approve_button(run_id, "restart-1")) == button


async def test_an_unchanged_risk_is_not_rewritten_at_every_check(redis_url: str, slack_api: StubWebApi) -> None:
    """Nothing changes in the cluster: the re-checks run but write nothing (no audit entry per
    check); then an approval click on the card goes through as usual."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster(),
                              advisory_recheck_s=0.2) as bot:
        run_id = await start_restart(bot, brokers="1")
        button = await bot.approve_button(run_id, "restart-1")
        audit_before = len(await bot.runs.audit(run_id))
        await asyncio.sleep(2.0)  # about ten re-checks
        assert len(await bot.runs.audit(run_id)) == audit_before
        await bot.click(APPROVE_ACTION, button, APPROVER)
        await bot.approve_button(run_id, "elect-leaders")
