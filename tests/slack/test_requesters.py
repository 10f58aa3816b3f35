"""Who may ask for what, and where, through Slack: signed `/kafka` requests dispatched into the real
Bolt app, real Redis, the stub Web API (user groups answered by usergroups.users.list) and a fake
cluster. A refusal is the ephemeral ack, one audit line, and nothing else: no run, no card, no roll."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from handlers.clusters import ManagedCluster
from runbooks.engine.access import AccessPolicy, People
from tests.fakes.cluster import APPROVER, OUTSIDER, REQUESTER, FakeCluster, managed
from tests.slack.harness import CHANNEL, InProcessBot, in_process_bot, response_json
from tests.slack.stub_web_api import StubWebApi
from tests.slack.test_flow import run_id_of

CLUSTER = "east"
ONCALL_GROUP, ONCALL_MEMBER = "S0ONCALL", "U0ONCALLER"
ELSEWHERE = "C0RANDOM"

pytestmark = pytest.mark.timeout(60)


def bound(**update: object) -> dict[str, ManagedCluster]:
    access = AccessPolicy(requesters=People(users=(REQUESTER,), groups=(ONCALL_GROUP,)), **update)  # type: ignore[arg-type]
    return {CLUSTER: managed(CLUSTER).model_copy(update={"access": access})}


@pytest.fixture
def audit(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="kafka_chatops.audit"):
        yield caplog


def refusals(caplog: pytest.LogCaptureFixture) -> list[tuple[object, ...]]:
    return [(r.actor, r.verb, r.cluster, r.channel, r.code) for r in caplog.records  # type: ignore[attr-defined]
            if getattr(r, "action", None) == "refused"]


async def nothing_happened(bot: InProcessBot, fake: FakeCluster, api: StubWebApi) -> None:
    assert await bot.runs.recent(CLUSTER, limit=5) == [], "no run was written"
    assert fake.rolls == {} and not api.calls_to("chat.postMessage"), "no roll, no card"


async def test_an_outsiders_restart_is_refused_privately_and_audited_while_a_requesters_works(
        redis_url: str, slack_api: StubWebApi, audit: pytest.LogCaptureFixture) -> None:
    fake = FakeCluster()
    async with in_process_bot(redis_url, slack_api, bound(), fake) as bot:
        refused = response_json(await bot.command(f"restart {CLUSTER}", OUTSIDER))
        assert refused["response_type"] == "ephemeral"
        assert refused["text"] == (f"{OUTSIDER} may not start restart on {CLUSTER}: only the requesters of {CLUSTER} "
                                   f"({REQUESTER}, or members of {ONCALL_GROUP}) may.")
        await nothing_happened(bot, fake, slack_api)
        assert refusals(audit) == [(OUTSIDER, "restart", CLUSTER, CHANNEL, "not_requester")]

        allowed = response_json(await bot.command(f"restart {CLUSTER} --brokers 0", REQUESTER))
        run = await bot.run(run_id_of(allowed["text"]))
        assert run.requested_by == REQUESTER and run.cluster == CLUSTER
        assert len(refusals(audit)) == 1


async def test_a_member_of_a_requester_group_may_restart_as_slack_says(
        redis_url: str, slack_api: StubWebApi) -> None:
    slack_api.usergroups[ONCALL_GROUP] = [ONCALL_MEMBER]
    async with in_process_bot(redis_url, slack_api, bound(), FakeCluster()) as bot:
        allowed = response_json(await bot.command(f"restart {CLUSTER} --brokers 0", ONCALL_MEMBER))
        run = await bot.run(run_id_of(allowed["text"]))
    assert run.requested_by == ONCALL_MEMBER
    asked = {c.args.get("usergroup") for c in slack_api.calls_to("usergroups.users.list")}
    assert ONCALL_GROUP in asked


async def test_an_approver_who_is_not_a_requester_may_not_start_a_run(
        redis_url: str, slack_api: StubWebApi) -> None:
    """Once the clusters file names requesters, approving does not imply requesting."""
    fake = FakeCluster()
    async with in_process_bot(redis_url, slack_api, bound(), fake) as bot:
        refused = response_json(await bot.command(f"restart {CLUSTER}", APPROVER))
        assert refused["response_type"] == "ephemeral" and "may not start restart" in refused["text"]
        await nothing_happened(bot, fake, slack_api)


async def test_a_command_from_another_channel_is_refused_even_from_a_requester(
        redis_url: str, slack_api: StubWebApi, audit: pytest.LogCaptureFixture) -> None:
    fake = FakeCluster()
    async with in_process_bot(redis_url, slack_api, bound(channels=(CHANNEL,)), fake) as bot:
        for text in (f"restart {CLUSTER}", f"status {CLUSTER}"):
            refused = response_json(await bot.command(text, REQUESTER, channel=ELSEWHERE))
            assert refused["response_type"] == "ephemeral"
            assert refused["text"] == f"Commands for {CLUSTER} are taken in #{CHANNEL} only (this was #{ELSEWHERE})."
        await nothing_happened(bot, fake, slack_api)
        assert refusals(audit) == [(REQUESTER, "restart", CLUSTER, ELSEWHERE, "wrong_channel"),
                                   (REQUESTER, "status", CLUSTER, ELSEWHERE, "wrong_channel")]
        allowed = response_json(await bot.command(f"restart {CLUSTER} --brokers 0", REQUESTER, channel=CHANNEL))
        assert (await bot.run(run_id_of(allowed["text"]))).channel == CHANNEL


async def test_viewers_limit_status_to_them(redis_url: str, slack_api: StubWebApi) -> None:
    async with in_process_bot(redis_url, slack_api, bound(viewers=People(users=("U0VIEWER",))),
                              FakeCluster()) as bot:
        refused = response_json(await bot.command(f"status {CLUSTER}", OUTSIDER))
        shown = response_json(await bot.command(f"status {CLUSTER}", "U0VIEWER"))
    assert refused["response_type"] == "ephemeral" and "may not use status on east" in refused["text"]
    assert f"{CLUSTER}: Ready" in shown["text"]
