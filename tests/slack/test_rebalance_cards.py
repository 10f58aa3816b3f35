"""Rebalance cards end to end through the ports' fakes: the KafkaRebalance fake (tests/fakes/rebalances.py)
in place of Kubernetes, a real Redis for the cards' records and leases, the stub Web API, and signed
clicks dispatched into the real Bolt app. A ProposalReady rebalance posts one card (once, across two
replicas); an approver's Approve sets the annotation; an outsider and a stale card are refused with the
reason and nothing is written; Stop during Rebalancing; the card follows the resource to Ready."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.clock import SystemClock
from bot.monitors.rebalances import RebalanceMonitor
from bot.slack.rebalance_cards import ACTION_PREFIX, attach_rebalance_cards
from bot.store.alert_state import MonitorLease
from bot.store.rebalance_cards import RedisRebalanceCards
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef
from handlers.rebalance_cards import RebalanceCards
from runbooks.engine.models import Actor
from runbooks.rules.rebalance import KafkaRebalanceView, OptimizationSummary, RebalanceAction, RebalanceState
from tests.fakes.cluster import APPROVER, GROUP_MEMBER, OUTSIDER, REQUESTER, FakeCluster, managed
from tests.fakes.rebalances import FakeRebalances
from tests.slack.harness import CHANNEL, InProcessBot, in_process_bot
from tests.slack.payloads import card_text, find_button
from tests.slack.stub_web_api import Message, StubWebApi

pytestmark = pytest.mark.timeout(60)
CLUSTER = "east"
APPROVE, REFRESH, STOP = (f"{ACTION_PREFIX}{a}" for a in ("approve", "refresh", "stop"))
SUMMARY = OptimizationSummary(replica_movements=42, leader_movements=7, data_to_move_mb=1234,
                              balancedness_before=71.25, balancedness_after=94.5)


@dataclass
class Rig:
    bot: InProcessBot
    fake: FakeRebalances
    monitor: RebalanceMonitor
    api: StubWebApi

    def card(self) -> Message:
        posts = self.api.calls_to("chat.postMessage", ok_only=True)
        assert len(posts) == 1, [c.args.get("text") for c in posts]
        message = self.api.message(CHANNEL, self.api.cards()[0].ts)
        assert message is not None
        return message

    def answers(self, user: str) -> list[str]:
        return [c.args["text"] for c in self.api.calls_to("response_url") if c.args.get("key") == f"click-{user}"]

    async def press(self, action_id: str, user: str, card: Message | None = None) -> None:
        button = find_button((card or self.card()).blocks, action_id)
        assert button is not None, card_text((card or self.card()).blocks)
        await self.bot.click(action_id, button["value"], user)


def cluster(approvals: int = 1) -> ManagedCluster:
    base = managed(CLUSTER, channel=CHANNEL)
    return base.model_copy(update={"policy": base.policy.model_copy(update={"approvals_required": approvals})})


@contextlib.asynccontextmanager
async def rig(redis_url: str, api: StubWebApi, *, approvals: int = 1) -> AsyncIterator[Rig]:
    clusters = {CLUSTER: cluster(approvals)}
    fake = FakeRebalances()
    async with in_process_bot(redis_url, api, clusters, FakeCluster(), worker=False) as bot:
        cards = RebalanceCards(clusters=clusters, rebalances=fake, store=RedisRebalanceCards(bot.runtime.redis),
                               clock=SystemClock(), owner="replica-a")
        monitor = RebalanceMonitor(cards, MonitorLease(bot.runtime.redis), owner="replica-a")
        bot.runtime.rebalances = monitor
        assert attach_rebalance_cards(bot.runtime, bot.front) is not None
        yield Rig(bot, fake, monitor, api)


def proposal(fake: FakeRebalances, name: str = "drain-3") -> None:
    fake.create("kafka", name, cluster=CLUSTER, mode="remove-brokers", brokers=(3,))
    fake.operator_moves("kafka", name, RebalanceState.PROPOSAL_READY, optimization=SUMMARY)


async def test_a_proposal_gets_one_card_and_an_approvers_approve_sets_the_annotation(
        redis_url: str, slack_api: StubWebApi) -> None:
    async with rig(redis_url, slack_api) as r:
        r.fake.create("kafka", "other-cluster", cluster="west")  # another cluster's: no card here
        proposal(r.fake)
        await r.monitor.poll_once()
        await r.monitor.poll_once()  # nothing changed: no second post, no edit
        card = r.card()
        text = card_text(card.blocks)
        assert "KafkaRebalance kafka/drain-3 on east: ProposalReady" in text
        assert "Proposal: 42 replica movements, 7 leader movements, 1,234 MB to move" in text
        assert "Balancedness: 71.2 before → 94.5 after" in text
        assert slack_api.count("chat.update") == 0
        assert find_button(card.blocks, STOP) is None  # Strimzi ignores stop on ProposalReady

        await r.press(APPROVE, GROUP_MEMBER)  # a member of the approver group
        assert r.fake.annotations_written == [("kafka", "drain-3", "approve")]
        assert r.answers(GROUP_MEMBER) == ["Set strimzi.io/rebalance=approve on KafkaRebalance kafka/drain-3: the "
                                           "operator acts on it at its next reconciliation, and the card follows."]
        edited = r.card()
        assert f"<@{GROUP_MEMBER}> pressed Approve at" in card_text(edited.blocks)
        assert "Requested: strimzi.io/rebalance=approve, waiting for the operator." in card_text(edited.blocks)
        assert find_button(edited.blocks, APPROVE) is None  # no second press while the operator has not acted


async def test_an_outsider_is_refused_with_the_reason_and_nothing_is_annotated(
        redis_url: str, slack_api: StubWebApi) -> None:
    async with rig(redis_url, slack_api) as r:
        proposal(r.fake)
        await r.monitor.poll_once()
        await r.press(APPROVE, OUTSIDER)
        assert r.answers(OUTSIDER) == [f"{OUTSIDER} is not an approver for cluster {CLUSTER}: nothing was changed."]
        assert r.fake.annotations_written == []
        assert r.fake.objects[("kafka", "drain-3")].pending_action == ""
        (record, _), = await RedisRebalanceCards(r.bot.runtime.redis).load_cluster(CLUSTER)
        assert [(p.by, p.action.value, p.outcome) for p in record.refused] == [(OUTSIDER, "approve", "not_approver")]
        assert record.presses == () and OUTSIDER not in card_text(r.card().blocks)


async def test_a_click_on_a_stale_card_is_refused_and_the_card_redrawn(redis_url: str, slack_api: StubWebApi) -> None:
    async with rig(redis_url, slack_api) as r:
        proposal(r.fake)
        await r.monitor.poll_once()
        old = r.card()
        # Someone approved with kubectl; the operator started moving data before the next poll.
        r.fake.operator_moves("kafka", "drain-3", RebalanceState.REBALANCING)
        await r.press(APPROVE, APPROVER, old)
        assert r.answers(APPROVER) == ["This card is stale: KafkaRebalance kafka/drain-3 is now Rebalancing, not "
                                       "ProposalReady as shown. Nothing was changed; use the updated card."]
        assert r.fake.annotations_written == []
        assert "on east: Rebalancing" in card_text(r.card().blocks)


async def test_stop_during_rebalancing_then_the_card_follows_to_stopped_and_ready(
        redis_url: str, slack_api: StubWebApi) -> None:
    async with rig(redis_url, slack_api) as r:
        proposal(r.fake)
        await r.monitor.poll_once()
        await r.press(APPROVE, APPROVER)
        r.fake.operator_moves("kafka", "drain-3", RebalanceState.REBALANCING)
        r.fake.set_progress("kafka", "drain-3", 37.5, 12)
        await r.monitor.poll_once()
        rebalancing = r.card()
        assert "Rebalancing: 37.5 % of the data moved, about 12 min left." in card_text(rebalancing.blocks)
        assert find_button(rebalancing.blocks, APPROVE) is None

        await r.press(STOP, REQUESTER, rebalancing)
        assert r.fake.annotations_written[-1] == ("kafka", "drain-3", "stop")
        r.fake.operator_moves("kafka", "drain-3", RebalanceState.STOPPED)
        await r.monitor.poll_once()
        stopped = card_text(r.card().blocks)
        assert "on east: Stopped" in stopped and "left partly rebalanced" in stopped
        assert f"<@{REQUESTER}> pressed Stop at" in stopped and f"<@{APPROVER}> pressed Approve at" in stopped

        await r.press(REFRESH, APPROVER)
        r.fake.operator_moves("kafka", "drain-3", RebalanceState.PROPOSAL_READY, optimization=SUMMARY)
        await r.monitor.poll_once()
        await r.press(APPROVE, APPROVER)
        r.fake.operator_moves("kafka", "drain-3", RebalanceState.READY)
        await r.monitor.poll_once()
        ready = r.card()
        assert "KafkaRebalance kafka/drain-3 on east: Ready" in card_text(ready.blocks)
        assert "Ready: the rebalance finished." in card_text(ready.blocks)
        assert find_button(ready.blocks, REFRESH) is not None and find_button(ready.blocks, APPROVE) is None
        assert [w[2] for w in r.fake.annotations_written] == ["approve", "stop", "refresh", "approve"]


async def test_two_of_two_approvals_before_the_annotation(redis_url: str, slack_api: StubWebApi) -> None:
    """N-of-M from the cluster's policy: the first approval is recorded on the card, the second sets approve."""
    async with rig(redis_url, slack_api, approvals=2) as r:
        proposal(r.fake)
        await r.monitor.poll_once()
        await r.press(APPROVE, APPROVER)
        assert r.fake.annotations_written == []
        assert r.answers(APPROVER) == ["Approval 1 of 2 recorded for KafkaRebalance kafka/drain-3; 1 more approver(s) "
                                       "needed before the bot sets strimzi.io/rebalance=approve."]
        assert f"Approvals: 1 of 2 (<@{APPROVER}>), 1 more needed" in card_text(r.card().blocks)
        await r.press(APPROVE, APPROVER)
        assert r.answers(APPROVER)[-1] == "You already approved this proposal."
        await r.press(APPROVE, REQUESTER)
        assert r.fake.annotations_written == [("kafka", "drain-3", "approve")]


async def test_auto_approved_rebalances_show_without_approve_and_two_replicas_post_once(
        redis_url: str, slack_api: StubWebApi) -> None:
    async with rig(redis_url, slack_api) as r:
        r.fake.create("kafka", "auto", cluster=CLUSTER, annotations={"strimzi.io/rebalance-auto-approval": "true"})
        r.fake.operator_moves("kafka", "auto", RebalanceState.REBALANCING, optimization=SUMMARY)
        other = RebalanceCards(clusters=r.monitor.cards.clusters, rebalances=r.fake,
                               store=RedisRebalanceCards(r.bot.runtime.redis), clock=SystemClock(), owner="replica-b",
                               channel=r.monitor.cards.channel)
        await r.monitor.cards.sync(cluster())
        await other.sync(cluster())  # a second replica during a lease hand-over
        text = card_text(r.card().blocks)
        assert "Auto-approved by the resource (strimzi.io/rebalance-auto-approval), not by the bot." in text
        assert find_button(r.card().blocks, APPROVE) is None and find_button(r.card().blocks, STOP) is not None
        r.fake.delete("kafka", "auto")
        await r.monitor.poll_once()
        assert "on east: deleted" in card_text(r.card().blocks)
        assert await RedisRebalanceCards(r.bot.runtime.redis).load_cluster(CLUSTER) == []  # the record is gone


async def test_one_replica_polls_a_cluster_and_a_failing_cluster_does_not_stop_the_others(
        redis_url: str, slack_api: StubWebApi) -> None:
    """Under the lease, a second replica's poll posts nothing; a cluster whose API refuses is skipped."""
    async with rig(redis_url, slack_api) as r:
        proposal(r.fake)
        broken = managed("west", channel=CHANNEL)
        clusters = {"west": broken, CLUSTER: cluster()}
        cards = RebalanceCards(clusters=clusters, rebalances=RefusingWest(r.fake),
                               store=RedisRebalanceCards(r.bot.runtime.redis), clock=SystemClock(), owner="replica-b",
                               channel=r.monitor.cards.channel)
        second = RebalanceMonitor(cards, MonitorLease(r.bot.runtime.redis), owner="replica-b")
        await r.monitor.poll_once()
        await second.poll_once()
        assert r.monitor.leading == {CLUSTER: True} and second.leading[CLUSTER] is False
        assert len(slack_api.calls_to("chat.postMessage")) == 1
        await r.monitor.stop()  # hands the lease over at once
        r.fake.operator_moves("kafka", "drain-3", RebalanceState.REBALANCING)
        await second.poll_once()  # west fails first, east is still synced
        assert second.leading == {"west": True, CLUSTER: True}
        assert len(slack_api.calls_to("chat.postMessage")) == 1  # the card exists: edited, not re-posted
        assert "on east: Rebalancing" in card_text(r.card().blocks)


class RefusingWest(FakeRebalances):
    """The port as an API server answers a cluster the bot has no RBAC for."""

    def __init__(self, inner: FakeRebalances) -> None:
        super().__init__()
        self.objects = inner.objects

    async def list_rebalances(self, cluster: ClusterRef) -> list[KafkaRebalanceView]:
        if cluster.name == "west":
            raise PermissionError("Kubernetes API: list KafkaRebalances kafka: HTTP 403 Forbidden")
        return await super().list_rebalances(cluster)


@pytest.mark.parametrize("approvals", [1, 2])
async def test_approvers_pressing_at_once_make_exactly_one_write(redis_url: str, slack_api: StubWebApi,
                                                                 approvals: int) -> None:
    """Two approvers' presses judged at the same time: with 2-of-2 the one completing the count sets
    approve (never neither); with 1-of-1 one sets it and the other is told it is already pending."""
    async with rig(redis_url, slack_api, approvals=approvals) as r:
        proposal(r.fake)
        await r.monitor.poll_once()
        (record, _), = await RedisRebalanceCards(r.bot.runtime.redis).load_cluster(CLUSTER)
        r.fake.delay_s = 0.05  # both presses read the card's record before either writes
        replies = await asyncio.gather(*(
            r.monitor.cards.press(record.id, RebalanceAction.APPROVE, RebalanceState.PROPOSAL_READY, Actor(id=user))
            for user in (APPROVER, REQUESTER)))
        assert r.fake.annotations_written == [("kafka", "drain-3", "approve")], [x.text for x in replies]
        if approvals == 1:
            assert sorted(x.ok for x in replies) == [False, True]
            assert "already carries strimzi.io/rebalance=approve" in next(x.text for x in replies if not x.ok)
        else:
            assert all(x.ok for x in replies)
