"""The Undo button of a paused run's card, through real Bolt dispatch (signed requests), real Redis, the
real worker and the stub Web API, over the in-memory Strimzi: a config change the brokers cannot start
with pauses; the card offers Undo; a click by someone who may not end the run is refused privately; the
requester's click starts the undo, whose own card appears in the channel, and ends the paused run."""

from __future__ import annotations

import re

import pytest

from bot.slack.blocks import APPROVE_ACTION, UNDO_ACTION
from runbooks.engine.models import RunState
from tests.fakes.cluster import APPROVER, OUTSIDER, REQUESTER, managed
from tests.fakes.strimzi import FakeStrimzi
from tests.fixtures.waiting import wait_for
from tests.slack.harness import CHANNEL, in_process_bot, response_json
from tests.slack.payloads import card_text, find_button
from tests.slack.stub_web_api import StubWebApi

pytestmark = pytest.mark.timeout(90)
CLUSTER = "east"


def private_answers(api: StubWebApi, user: str) -> list[str]:
    return [c.args["text"] for c in api.calls_to("response_url") if c.args.get("key") == f"click-{user}"]


async def test_the_undo_button_starts_the_undo_and_its_card_follows(redis_url: str, slack_api: StubWebApi) -> None:
    fake = FakeStrimzi(CLUSTER, version="4.3.1", zookeeper=False)
    fake.poison = {"auto.create.topics.enable": "false"}
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, fake) as bot:  # type: ignore[arg-type]
        fake.start()
        try:
            response = await bot.command(f"config {CLUSTER} set auto.create.topics.enable=false", REQUESTER)
            match = re.search(r"`(r-[0-9a-f]+)`", response_json(response)["text"])
            assert match, response_json(response)
            run_id = match.group(1)
            await bot.click(APPROVE_ACTION, await bot.approve_button(run_id, "patch-config"), APPROVER)
            card = await bot.card_showing(run_id, RunState.PAUSED)
            assert "CrashLoopBackOff" in card_text(card.blocks)
            undo = find_button(card.blocks, UNDO_ACTION)
            assert undo is not None, card_text(card.blocks)

            await bot.click(UNDO_ACTION, undo["value"], OUTSIDER)
            assert private_answers(slack_api, OUTSIDER) == [
                f"Only the requester or an approver of {CLUSTER} may undo run {run_id} (it ends that run)."]
            assert (await bot.run(run_id)).state is RunState.PAUSED

            await bot.click(UNDO_ACTION, undo["value"], REQUESTER)
            ended = await bot.wait_state(run_id, RunState.ABORTED)
            found = re.search(r"Superseded by undo run (r-[0-9a-f]+)", ended.outcome or "")
            assert found, ended.outcome
            undo_id = found.group(1)
            undo_card = await bot.card_showing(undo_id, RunState.AWAITING_APPROVAL)
            assert undo_card.channel == CHANNEL
            assert "Undo run" in card_text(undo_card.blocks)
            await bot.click(APPROVE_ACTION, await bot.approve_button(undo_id, "revert"), APPROVER)
            await bot.wait_state(undo_id, RunState.SUCCEEDED, timeout=30)
            old_card = await bot.card_showing(run_id, RunState.ABORTED)
            text = card_text(old_card.blocks)
            assert f"Superseded by undo run {undo_id}" in text and "Undo available" not in text
            await wait_for(lambda: not fake.pods[0].crashed and fake.ready, timeout=10, message="the cluster back")
        finally:
            await fake.stop()
