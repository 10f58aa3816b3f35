"""The Slack front end end to end in one process: real Bolt dispatch with signed requests, real
Redis, the real engine worker, the stub Web API, and a fake cluster whose pods roll instantly."""

from __future__ import annotations

import asyncio
import itertools
import json
import re

import pytest

from bot.slack.blocks import ABORT_ACTION, APPROVE_ACTION, RETRY_ACTION, ButtonValue
from runbooks.engine.models import RunState, StepState
from tests.fakes.cluster import APPROVER, GROUP_MEMBER, OUTSIDER, REQUESTER, FakeCluster, managed
from tests.fixtures.waiting import wait_for
from tests.slack.harness import CHANNEL, InProcessBot, in_process_bot, response_json
from tests.slack.payloads import card_text, find_button
from tests.slack.stub_web_api import StubWebApi

CLUSTER = "east"


def run_id_of(response_text: str) -> str:
    match = re.search(r"`(r-[0-9a-f]+)`", response_text)
    assert match, f"no run id in {response_text!r}"
    return match.group(1)


async def start_restart(bot: InProcessBot, brokers: str | None = "0", user: str = REQUESTER) -> str:
    text = f"restart {CLUSTER}" + (f" --brokers {brokers}" if brokers else "")
    response = await bot.command(text, user)
    assert response.status == 200
    return run_id_of(response_json(response)["text"])


def refusals_to(api: StubWebApi, user: str) -> list[str]:
    return [c.args["text"] for c in api.calls_to("response_url") if c.args.get("key") == f"click-{user}"]


def assert_final_card(card_blocks: list[dict[str, object]], steps: int) -> None:
    assert not [b for b in card_blocks if b.get("type") == "actions"], "a finished run's card has no buttons"
    text = card_text(card_blocks)  # type: ignore[arg-type]
    assert "*succeeded*" in text
    assert text.count("✅") == steps, text


async def test_restart_run_is_in_redis_when_the_ack_returns(redis_url: str, slack_api: StubWebApi) -> None:
    """`/kafka restart` acks (ephemerally, naming the run) only after the run is written to Redis."""
    fake = FakeCluster()
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, fake, worker=False) as bot:
        response = await bot.command(f"restart {CLUSTER} --brokers 0", REQUESTER)
        body = response_json(response)
        assert response.status == 200 and body["response_type"] == "ephemeral"
        run = await bot.run(run_id_of(body["text"]))  # read right after the ack: no waiting allowed
        assert run.requested_by == REQUESTER and run.channel == CHANNEL


async def test_a_run_approved_by_buttons_completes_and_its_card_ends_without_buttons(
        redis_url: str, slack_api: StubWebApi) -> None:
    """Every step approved by clicks: one card, edited in place (coalesced), all steps done, no buttons."""
    fake = FakeCluster()
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, fake) as bot:
        run_id = await start_restart(bot, brokers=None)
        for step_id in ("restart-0", "restart-1", "restart-2", "elect-leaders"):
            value = await bot.approve_button(run_id, step_id)
            response = await bot.click(APPROVE_ACTION, value, APPROVER)
            assert response.status == 200
        await bot.wait_state(run_id, RunState.SUCCEEDED)
        card = await bot.card_showing(run_id, RunState.SUCCEEDED)
        await bot.front.cards.idle()
    assert_final_card(card.blocks, steps=5)
    assert fake.rolls == {(CLUSTER, 0): 1, (CLUSTER, 1): 1, (CLUSTER, 2): 1}
    cards = [c for c in slack_api.calls_to("chat.postMessage") if "thread_ts" not in c.args]
    assert len(cards) == 1, "one message per run"
    updates = slack_api.calls_to("chat.update")
    gaps = [b.at - a.at for a, b in itertools.pairwise(updates)]
    assert all(gap >= 0.9 for gap in gaps), f"edits closer than ~1 s apart: {gaps}"
    thread = slack_api.thread(CHANNEL, card.ts)
    assert thread and any("approved" in m.text for m in thread), "per-step details go to the card's thread"
    assert not refusals_to(slack_api, APPROVER)


async def test_refused_clicks_are_ephemeral_audited_and_change_nothing(redis_url: str, slack_api: StubWebApi) -> None:
    """An outsider and the requester (four-eyes) are refused privately; the audit keeps both; the run is unchanged."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot)
        value = await bot.approve_button(run_id, "restart-0")
        before = await bot.runs.load(run_id)
        await bot.click(APPROVE_ACTION, value, OUTSIDER)
        await bot.click(APPROVE_ACTION, value, REQUESTER)
        after = await bot.runs.load(run_id)
        assert before is not None and after is not None
        assert after[0].approval == before[0].approval and after[0].state is RunState.AWAITING_APPROVAL
        assert "not an approver" in refusals_to(slack_api, OUTSIDER)[0]
        assert "Four-eyes" in refusals_to(slack_api, REQUESTER)[0]
        audit = await bot.runs.audit(run_id)
        refused = [(e.actor, e.detail.split(":")[0]) for e in audit if e.action == "approve_refused"]
        assert refused == [(OUTSIDER, "not_approver"), (REQUESTER, "self_approval")]
        assert all(c.args.get("response_type") == "ephemeral" for c in slack_api.calls_to("response_url"))


async def test_group_member_approves_and_the_group_lookup_is_cached(redis_url: str, slack_api: StubWebApi) -> None:
    """A member of the approver user group may approve; usergroups.users.list is asked once for a burst."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot)
        value = await bot.approve_button(run_id, "restart-0")
        await bot.click(APPROVE_ACTION, value, OUTSIDER)
        await bot.click(APPROVE_ACTION, value, GROUP_MEMBER)
        run = await bot.wait_state(run_id, RunState.RUNNING, RunState.WAITING, RunState.AWAITING_APPROVAL,
                                   RunState.SUCCEEDED)
        assert run.steps[1].state is not StepState.AWAITING_APPROVAL
        assert slack_api.count("usergroups.users.list") == 1
        assert not refusals_to(slack_api, GROUP_MEMBER)


async def test_double_click_approves_once_and_an_old_button_is_stale(redis_url: str, slack_api: StubWebApi) -> None:
    """Two simultaneous clicks approve once; a click on the previous step's button is refused as stale."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot, brokers="0,1")
        first = await bot.approve_button(run_id, "restart-0")
        responses = await asyncio.gather(*(bot.click(APPROVE_ACTION, first, APPROVER) for _ in range(2)))
        assert [r.status for r in responses] == [200, 200]
        await bot.approve_button(run_id, "restart-1")  # the card moved on to the next step
        await bot.click(APPROVE_ACTION, first, APPROVER)
        audit = await bot.runs.audit(run_id)
        approvals = [e for e in audit if e.action == "approve" and e.step_id == "restart-0"]
        assert len(approvals) == 1
        refusals = refusals_to(slack_api, APPROVER)
        assert len(refusals) == 2 and all("no longer waiting" in r for r in refusals), refusals


async def test_a_429_storm_delays_the_card_but_the_run_completes_and_the_card_ends_right(
        redis_url: str, slack_api: StubWebApi) -> None:
    """Slack answering 429 (Retry-After: 1) to a string of calls loses no transition: the final card is correct."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot)
        value = await bot.approve_button(run_id, "restart-0")
        slack_api.fail("chat.update", status=429, retry_after=1, times=6)
        slack_api.fail("chat.postMessage", status=429, retry_after=1, times=3)
        await bot.click(APPROVE_ACTION, value, APPROVER)
        value = await bot.approve_button(run_id, "elect-leaders")
        slack_api.fail("chat.update", status=429, retry_after=1, times=4)
        await bot.click(APPROVE_ACTION, value, APPROVER)
        await bot.wait_state(run_id, RunState.SUCCEEDED)
        card = await bot.card_showing(run_id, RunState.SUCCEEDED, timeout=40)
        await bot.front.cards.idle()
    assert_final_card(card.blocks, steps=3)
    assert len([c for c in slack_api.calls_to("chat.update") if c.status == 429]) == 10


async def test_a_click_on_another_replica_works_and_both_update_the_same_card(
        redis_url: str, slack_api: StubWebApi) -> None:
    """Replica B takes the click for a run replica A created and drives; there is still one card."""
    fake, clusters = FakeCluster(), {CLUSTER: managed(CLUSTER)}
    async with in_process_bot(redis_url, slack_api, clusters, fake, owner="a") as a, \
            in_process_bot(redis_url, slack_api, clusters, fake, owner="b", worker=False) as b:
        run_id = await start_restart(a)
        value = await a.approve_button(run_id, "restart-0")
        await b.click(APPROVE_ACTION, value, APPROVER)
        value = await b.approve_button(run_id, "elect-leaders")
        await b.click(APPROVE_ACTION, value, APPROVER)
        await a.wait_state(run_id, RunState.SUCCEEDED)
        card = await b.card_showing(run_id, RunState.SUCCEEDED)
        await asyncio.gather(a.front.cards.idle(), b.front.cards.idle())
    assert_final_card(card.blocks, steps=3)
    assert len([c for c in slack_api.calls_to("chat.postMessage") if "thread_ts" not in c.args]) == 1


async def test_the_ack_does_not_wait_for_the_clickers_private_answer(redis_url: str, slack_api: StubWebApi) -> None:
    """The refusal is decided and audited before the ack, but sent after it: with Slack's
    response_url answering slowly, the click's HTTP response is back while the answer is still
    on its way, and the answer arrives afterwards."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot)
        value = await bot.approve_button(run_id, "restart-0")
        slack_api.response_url_delay_s = 3.0
        try:
            response = await bot.click(APPROVE_ACTION, value, OUTSIDER, wait_for_answer=False)
            assert response.status == 200
            assert bot.front.background.pending, "the private answer was sent before the ack returned"
            assert [e.action for e in await bot.runs.audit(run_id)].count("approve_refused") == 1
            await bot.front.background.wait()
        finally:
            slack_api.response_url_delay_s = 0.0
        assert "not an approver" in refusals_to(slack_api, OUTSIDER)[0]


async def test_abort_and_retry_buttons(redis_url: str, slack_api: StubWebApi) -> None:
    """Abort (confirmed in Slack) stops the run and removes the buttons; a malformed value is refused."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot)
        await bot.approve_button(run_id, "restart-0")
        card = await bot.card(run_id)
        abort = find_button(card.blocks, ABORT_ACTION)
        assert abort is not None and abort["style"] == "danger" and "confirm" in abort
        await bot.click(RETRY_ACTION, ButtonValue(run_id, "restart-0").encode(), APPROVER)
        assert "not paused" in refusals_to(slack_api, APPROVER)[-1]
        await bot.click(APPROVE_ACTION, "{not json", APPROVER)
        assert "could not be read" in refusals_to(slack_api, APPROVER)[-1]
        await bot.click(ABORT_ACTION, abort["value"], APPROVER)
        await bot.wait_state(run_id, RunState.ABORTED)
        card = await bot.card_showing(run_id, RunState.ABORTED)
    assert not [b for b in card.blocks if b.get("type") == "actions"]


async def test_parse_errors_help_and_console_only_verbs_are_ephemeral(redis_url: str, slack_api: StubWebApi) -> None:
    """Bad input gets the usage privately; `approve` points to the button; help leaves console-only verbs out."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster(), worker=False) as bot:
        bad = response_json(await bot.command("restart", REQUESTER))
        approve = response_json(await bot.command("approve r-12345678", APPROVER))
        overview = response_json(await bot.command("", REQUESTER))
        unknown = response_json(await bot.command("status nope", REQUESTER))
        clusters = response_json(await bot.command("clusters", REQUESTER))
    assert bad["response_type"] == "ephemeral" and "Usage: /kafka restart" in bad["text"]
    assert approve["response_type"] == "ephemeral" and "*Approve* button" in approve["text"]
    assert "approve <run-id>" not in overview["text"] and "restart <cluster>" in overview["text"]
    assert unknown["response_type"] == "ephemeral" and "unknown cluster 'nope'" in unknown["text"]
    assert CLUSTER in clusters["text"]
    # Answered in the ack: no message posted (the start-up group prefetch and auth.test aside).
    assert {c.method for c in slack_api.calls} <= {"auth.test", "usergroups.users.list"}


async def test_a_slow_cluster_is_acked_in_time_and_answered_later(redis_url: str, slack_api: StubWebApi) -> None:
    """When the use case outlasts the ack budget, Slack gets "working on it" and the answer follows by response_url."""
    fake = FakeCluster(delay_s=0.8)
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, fake, ack_budget_s=0.2,
                              worker=False) as bot:
        response = response_json(await bot.command(f"restart {CLUSTER} --brokers 0", REQUESTER))
        assert "Working on" in response["text"]
        late = await wait_for(lambda: [c for c in slack_api.calls_to("response_url") if c.args["key"] == "cmd"],
                              timeout=10, message="the late answer")
        await bot.run(run_id_of(late[0].args["text"]))


async def test_a_card_that_cannot_be_posted_is_reported_to_the_requester(
        redis_url: str, slack_api: StubWebApi) -> None:
    """`not_in_channel` is not retried in a loop; the requester is told once how to fix it."""
    slack_api.fail("chat.postMessage", status=200, retry_after=None, times=50, error="not_in_channel")
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot)
        told = await wait_for(lambda: [c for c in slack_api.calls_to("response_url")
                                       if "cannot post the card" in c.args.get("text", "")],
                              timeout=10, message="the requester to be told")
        await bot.front.cards.idle()
    assert run_id in told[0].args["text"] and "/invite" in told[0].args["text"]
    assert len(told) == 1
    assert slack_api.count("chat.postMessage") < 10
    slack_api.clear_failures()


@pytest.mark.parametrize("verb", ["abort", "resume"])
async def test_abort_and_resume_commands_answer_briefly(redis_url: str, slack_api: StubWebApi, verb: str) -> None:
    """`/kafka abort|resume <run>` acks privately; the card shows the result."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot)
        await bot.approve_button(run_id, "restart-0")
        answer = response_json(await bot.command(f"{verb} {run_id}", APPROVER))
    assert answer["response_type"] == "ephemeral"
    if verb == "abort":
        assert "done" in answer["text"]
    else:
        assert "not paused" in answer["text"]


async def test_slack_500s_are_retried_and_the_card_catches_up(redis_url: str, slack_api: StubWebApi) -> None:
    """Slack failing (HTTP 500) on edits and thread replies: retried with backoff, the final card is right."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot)
        value = await bot.approve_button(run_id, "restart-0")
        slack_api.fail("chat.update", status=500, retry_after=None, times=3)
        slack_api.fail("chat.postMessage", status=500, retry_after=None, times=2)
        await bot.click(APPROVE_ACTION, value, APPROVER)
        value = await bot.approve_button(run_id, "elect-leaders")
        await bot.click(APPROVE_ACTION, value, APPROVER)
        await bot.wait_state(run_id, RunState.SUCCEEDED)
        card = await bot.card_showing(run_id, RunState.SUCCEEDED, timeout=40)
        await bot.front.cards.idle()
    assert_final_card(card.blocks, steps=3)
    assert len([c for c in slack_api.calls if c.status == 500]) == 5
    assert len([c for c in slack_api.calls_to("chat.postMessage") if "thread_ts" not in c.args]) == 1


async def test_a_paused_run_is_resumed_with_its_retry_button(redis_url: str, slack_api: StubWebApi) -> None:
    """A failed pre-flight pauses the run; the card offers Retry; once healthy, Retry moves the run on."""
    fake = FakeCluster()
    fake.under_replicated = True
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, fake) as bot:
        run_id = await start_restart(bot)
        card = await bot.card_showing(run_id, RunState.PAUSED)
        retry = find_button(card.blocks, RETRY_ACTION)
        assert retry is not None and json.loads(retry["value"])["step"] == "preflight"
        assert "under-replicated" in card_text(card.blocks) or "URP" in card_text(card.blocks)
        fake.under_replicated = False
        await bot.click(RETRY_ACTION, retry["value"], OUTSIDER)
        assert "not an approver" in (await wait_for(lambda: refusals_to(slack_api, OUTSIDER), timeout=5,
                                                    message="the refusal"))[0]
        await bot.click(RETRY_ACTION, retry["value"], APPROVER)
        await bot.approve_button(run_id, "restart-0")


async def test_a_click_naming_a_step_the_run_does_not_have_says_so(redis_url: str, slack_api: StubWebApi) -> None:
    """A button value with an invented step id (forged or from a bug) is refused with "has no step"
    and the run's steps, not with "no longer waiting"; the run is unchanged."""
    async with in_process_bot(redis_url, slack_api, {CLUSTER: managed(CLUSTER)}, FakeCluster()) as bot:
        run_id = await start_restart(bot)
        shown = ButtonValue.decode(await bot.approve_button(run_id, "restart-0"))
        assert shown is not None
        forged = ButtonValue(run_id, "nosuchstep", shown.nonce, shown.plan_hash).encode()
        await bot.click(APPROVE_ACTION, forged, APPROVER)
        run = await bot.run(run_id)
    refusal = refusals_to(slack_api, APPROVER)[0]
    assert f'Run {run_id} has no step "nosuchstep"' in refusal and "restart-0" in refusal, refusal
    assert run.state is RunState.AWAITING_APPROVAL and run.approval is not None and not run.approval.approvals
