"""Where a run's card goes: the cluster's channel (the clusters file's ``channel``), whichever
channel or DM the command was typed in; the private answer to the requester says where it is."""

from __future__ import annotations

import pytest

from runbooks.engine.models import RunState
from tests.fakes.cluster import APPROVER, REQUESTER, FakeCluster, managed
from tests.slack.harness import CHANNEL, in_process_bot, response_json
from tests.slack.stub_web_api import StubWebApi
from tests.slack.test_flow import run_id_of

CLUSTER = "east"
CLUSTER_CHANNEL = "C0EASTOPS"
DM = "D0REQUESTER"

pytestmark = pytest.mark.timeout(60)


def cards_in(api: StubWebApi) -> list[str]:
    """The channels run cards were posted in (thread replies left out)."""
    return [str(c.args["channel"]) for c in api.calls_to("chat.postMessage") if "thread_ts" not in c.args]


@pytest.mark.parametrize("typed_in", [CHANNEL, DM], ids=["another-channel", "dm"])
async def test_the_card_goes_to_the_clusters_channel_and_the_requester_is_told_where(
        redis_url: str, slack_api: StubWebApi, typed_in: str) -> None:
    """`/kafka restart` typed in another channel or in a DM: the card is posted in the cluster's
    channel only, and the requester's private answer points to it there."""
    clusters = {CLUSTER: managed(CLUSTER, channel=CLUSTER_CHANNEL)}
    async with in_process_bot(redis_url, slack_api, clusters, FakeCluster()) as bot:
        answer = response_json(await bot.command(f"restart {CLUSTER} --brokers 0", REQUESTER, channel=typed_in))
        run_id = run_id_of(answer["text"])
        await bot.card_showing(run_id, RunState.AWAITING_APPROVAL)
        card = await bot.card(run_id)
        await bot.front.cards.idle()
    assert card.channel == CLUSTER_CHANNEL
    assert cards_in(slack_api) == [CLUSTER_CHANNEL], "one card, in the cluster's channel, none where it was typed"
    assert answer["response_type"] == "ephemeral"
    assert f"<#{CLUSTER_CHANNEL}>" in answer["text"], answer["text"]
    assert "this channel" not in answer["text"]
    run = await bot.run(run_id)
    assert run.channel == typed_in, "the run still records where it was asked for"


async def test_typed_in_the_clusters_own_channel_the_card_is_there(redis_url: str, slack_api: StubWebApi) -> None:
    """In the cluster's own channel nothing changes: the card is posted there, and the answer says so."""
    clusters = {CLUSTER: managed(CLUSTER, channel=CHANNEL)}
    async with in_process_bot(redis_url, slack_api, clusters, FakeCluster()) as bot:
        answer = response_json(await bot.command(f"restart {CLUSTER} --brokers 0", REQUESTER))
        run_id = run_id_of(answer["text"])
        await bot.card(run_id)
        await bot.front.cards.idle()
    assert cards_in(slack_api) == [CHANNEL]
    assert "this channel" in answer["text"]


async def test_a_cluster_without_a_channel_gets_its_card_where_the_command_was_typed(
        redis_url: str, slack_api: StubWebApi) -> None:
    """No `channel` in the clusters file: the card goes where the command was typed, as before."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        answer = response_json(await bot.command(f"restart {CLUSTER} --brokers 0", REQUESTER, channel=DM))
        run_id = run_id_of(answer["text"])
        await bot.card(run_id)
        await bot.front.cards.idle()
    assert cards_in(slack_api) == [DM]


async def test_an_abort_typed_elsewhere_points_to_the_card_in_the_clusters_channel(
        redis_url: str, slack_api: StubWebApi) -> None:
    """Any command that answers with a run (abort here) says where that run's card is."""
    clusters = {CLUSTER: managed(CLUSTER, channel=CLUSTER_CHANNEL)}
    async with in_process_bot(redis_url, slack_api, clusters, FakeCluster()) as bot:
        run_id = run_id_of(response_json(await bot.command(f"restart {CLUSTER} --brokers 0", REQUESTER))["text"])
        await bot.approve_button(run_id, "restart-0")
        answer = response_json(await bot.command(f"abort {run_id}", APPROVER, channel=DM))
        await bot.front.cards.idle()
    assert f"<#{CLUSTER_CHANNEL}>" in answer["text"], answer["text"]
