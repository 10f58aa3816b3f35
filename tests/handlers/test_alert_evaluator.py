"""The alert use cases over in-memory fakes of their ports: one post then edits, two replicas
post once, a restart re-posts nothing, a failed read resolves nothing, snooze, and the
/kafka alerts, snooze and lag answers."""

from __future__ import annotations

from datetime import timedelta

from handlers.alerting.alert_text import AlertView
from handlers.alerting.evaluator import AlertEvaluator, AlertQueries
from handlers.alerting.lag_models import GroupLag, LagReport, PartitionLag, SecondsFrom
from handlers.clusters import ManagedCluster
from runbooks.alerting.lifecycle import AlertKey, AlertRules, Condition, ConditionRule, MessageRef, Observation, Phase
from runbooks.engine.models import Actor
from tests.fakes.alerts import FakeClock, MemoryAlertStore, MemoryLagReports, RecordingChannel, cluster

URP = AlertKey(cluster="prod", condition=Condition.UNDER_REPLICATED, subject="broker-2")
SCOPE = {Condition.UNDER_REPLICATED, Condition.BROKER_DOWN}
RULES = AlertRules(update_interval_s=0, under_replicated=ConditionRule(cooldown_s=60))


def urp(value: float = 3) -> list[Observation]:
    return [Observation(key=URP, value=value, detail=f"{value} partitions",
                        facts={"next_command": "/kafka restart prod --brokers 2", "next_label": "Restart broker 2"})]


def evaluator(store: MemoryAlertStore, channel: RecordingChannel, clock: FakeClock, owner: str = "a") -> AlertEvaluator:
    return AlertEvaluator(clusters={"prod": cluster(rules=RULES)}, store=store, clock=clock, owner=owner,
                          channel=channel)


async def test_an_alert_is_posted_once_then_edited_then_resolved() -> None:
    """Fire: one post with Snooze and Restart buttons; a new value: an edit of that message; clear: resolved."""
    store, channel, clock = MemoryAlertStore(), RecordingChannel(), FakeClock()
    ev = evaluator(store, channel, clock)
    prod = ev.clusters["prod"]
    await ev.evaluate(prod, SCOPE, urp(3))
    clock.advance(5)
    await ev.evaluate(prod, SCOPE, urp(4))
    clock.advance(5)
    await ev.evaluate(prod, SCOPE, [])
    assert len(channel.posts) == 1
    assert [b.label for b in channel.posts[0].buttons] == ["Snooze 30 min", "Snooze 2 h", "Snooze 1 day",
                                                          "Restart broker 2"]
    assert [ref for ref, _ in channel.updates] == ["m1", "m1"]
    assert channel.updates[-1][1].phase is Phase.RESOLVED and "resolved" in channel.updates[-1][1].headline


async def test_two_replicas_evaluating_the_same_moment_post_once() -> None:
    """Two evaluators on one store: the compare-and-set and the post claim let one message out."""
    store, clock = MemoryAlertStore(), FakeClock()
    first, second = RecordingChannel(), RecordingChannel()
    a, b = evaluator(store, first, clock, "a"), evaluator(store, second, clock, "b")
    for _ in range(3):
        await a.evaluate(a.clusters["prod"], SCOPE, urp())
        await b.evaluate(b.clusters["prod"], SCOPE, urp())
        clock.advance(5)
    assert len(first.posts) + len(second.posts) == 1


async def test_a_restarted_bot_posts_nothing_already_open() -> None:
    """A new evaluator (a restarted process) finds the open alert in the store and only edits it."""
    store, clock = MemoryAlertStore(), FakeClock()
    before, after = RecordingChannel(), RecordingChannel()
    await evaluator(store, before, clock, "old").evaluate(cluster(rules=RULES), SCOPE, urp(3))
    clock.advance(30)
    await evaluator(store, after, clock, "new").evaluate(cluster(rules=RULES), SCOPE, urp(5))
    assert len(before.posts) == 1 and after.posts == [] and [r for r, _ in after.updates] == ["m1"]


async def test_a_subject_the_monitor_could_not_read_is_left_alone() -> None:
    """Unknown this time (e.g. the group's offsets failed): neither resolved nor changed."""
    store, channel, clock = MemoryAlertStore(), RecordingChannel(), FakeClock()
    ev = evaluator(store, channel, clock)
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    await ev.evaluate(ev.clusters["prod"], SCOPE, [], unknown={"broker-2"})
    loaded = await store.load(URP.id)
    assert loaded is not None and loaded[0].phase is Phase.FIRING and channel.updates == []


async def test_a_failed_post_is_retried_by_the_next_evaluation() -> None:
    """The channel was down: the alert stays firing without a message and the next poll posts it."""
    store, channel, clock = MemoryAlertStore(), RecordingChannel(fail=True), FakeClock()
    ev = evaluator(store, channel, clock)
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    channel.fail = False
    clock.advance(5)
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    assert len(channel.posts) == 1
    loaded = await store.load(URP.id)
    assert loaded is not None and loaded[0].message is not None


async def test_a_disabled_rule_never_fires() -> None:
    """enabled: false in the clusters file silences a condition."""
    store, channel, clock = MemoryAlertStore(), RecordingChannel(), FakeClock()
    rules = AlertRules(under_replicated=ConditionRule(enabled=False))
    ev = AlertEvaluator(clusters={"prod": cluster(rules=rules)}, store=store, clock=clock, owner="a", channel=channel)
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    assert channel.posts == [] and store.docs == {}


async def test_snooze_edits_the_message_and_mutes_the_next_occurrence() -> None:
    """Snoozed by U1: the message says so; after a resolve and the cooldown, a new occurrence posts nothing."""
    store, channel, clock = MemoryAlertStore(), RecordingChannel(), FakeClock()
    ev = evaluator(store, channel, clock)
    prod = ev.clusters["prod"]
    await ev.evaluate(prod, SCOPE, urp())
    reply = await ev.snooze(URP.id, timedelta(hours=2), Actor(id="U1"))
    assert reply.ok and "until 14:00 UTC" in reply.text
    assert "Snoozed by U1 until 14:00 UTC" in channel.updates[-1][1].text
    await ev.evaluate(prod, SCOPE, [])
    clock.advance(120)
    await ev.evaluate(prod, SCOPE, urp())
    assert len(channel.posts) == 1
    clock.advance(2 * 3600)
    await ev.evaluate(prod, SCOPE, urp())
    assert len(channel.posts) == 2  # the snooze ended and it still fires


async def test_a_snooze_that_lands_while_the_message_is_posted_still_shows_on_it() -> None:
    """Snoozed between the alert's save and the post's return (the message id is not recorded yet, so the
    snooze cannot edit it): once the id is recorded, the message is edited to say who snoozed it."""
    store, clock = MemoryAlertStore(), FakeClock()
    snoozes: list[str] = []

    class SnoozedWhilePosting(RecordingChannel):
        async def post(self, cluster: ManagedCluster, view: AlertView) -> MessageRef:
            ref = await super().post(cluster, view)
            snoozes.append((await ev.snooze(URP.id, timedelta(minutes=30), Actor(id="U1"))).text)
            return ref

    channel = SnoozedWhilePosting()
    ev = evaluator(store, channel, clock)
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    assert len(channel.posts) == 1 and snoozes and snoozes[0].startswith("Snoozed")
    assert [ref for ref, _ in channel.updates] == ["m1"]
    assert "Snoozed by U1 until 12:30 UTC" in channel.updates[0][1].text


async def test_snooze_refuses_unknown_ids_and_long_mutes() -> None:
    """An id nobody has, or more than 7 days, is refused with the reason."""
    ev = evaluator(MemoryAlertStore(), RecordingChannel(), FakeClock())
    missing = await ev.snooze("a-00000000", timedelta(hours=1), Actor(id="U1"))
    assert not missing.ok and "No alert a-00000000" in missing.text
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    long = await ev.snooze(URP.id, timedelta(days=8), Actor(id="U1"))
    assert not long.ok and "at most" in long.text


def lag_report(clock: FakeClock) -> LagReport:
    partition = PartitionLag(topic="orders", partition=0, committed=10, end=110, lag=100, seconds=42.0,
                             seconds_from=SecondsFrom.TABLE, client_id="app-1")
    return LagReport(cluster="prod", taken_at=clock.now(), poll_seconds=0.12, groups=(
        GroupLag(group="orders-app", state="Stable", partitions=(partition,)),
        GroupLag(group="broken", error="coordinator not available")))


async def test_queries_answer_alerts_lag_and_errors() -> None:
    """/kafka alerts lists ids; /kafka lag lists groups and shows one; unknown names are refused."""
    store, channel, clock, reports = MemoryAlertStore(), RecordingChannel(), FakeClock(), MemoryLagReports()
    ev = evaluator(store, channel, clock)
    queries = AlertQueries(ev, store, reports, clock)
    assert (await queries.alerts("prod")).text == "No alerts on prod."
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    listed = await queries.alerts("prod")
    assert URP.id in listed.text and "firing" in listed.text
    none_yet = await queries.lag("prod", None)
    assert not none_yet.ok and "No lag figures for prod yet" in none_yet.text
    await reports.save(lag_report(clock), ttl_s=60)
    overview = (await queries.lag("prod", None)).text
    assert "orders-app · Stable · 0 · 100 · 42 s · 100" in overview and "broken · not read" in overview
    detail = (await queries.lag("prod", "orders-app")).text
    assert "orders-0: 10 / 110 · 100 · 42 s · app-1" in detail
    missing = await queries.lag("prod", "nope")
    assert not missing.ok and "orders-app" in missing.text


def test_views_carry_the_value_and_the_alert_id() -> None:
    """The console's JSON and Slack's blocks both start from this view."""
    view = AlertView(alert_id="a-1", cluster="prod", condition=Condition.BROKER_DOWN, subject="broker-1",
                     phase=Phase.FIRING, headline="h", lines=("l1", "l2"))
    assert view.text == "h\nl1\nl2"


class ActiveRuns:
    """A RunRepository reduced to the one question the evaluator asks: is a run active here?"""

    def __init__(self, active: list[str]) -> None:
        self._active = active

    async def active(self, cluster: str | None = None) -> list[str]:
        return list(self._active)


async def test_while_a_runbook_runs_health_alerts_wait_their_longer_window() -> None:
    """A rolling restart takes brokers out of the ISR on purpose: nothing is posted before during_run_for."""
    store, channel, clock = MemoryAlertStore(), RecordingChannel(), FakeClock()
    rules = AlertRules(during_run_for_s=180)
    ev = AlertEvaluator(clusters={"prod": cluster(rules=rules)}, store=store, clock=clock, owner="a",
                        channel=channel, runs=ActiveRuns(["r-1234abcd"]))  # type: ignore[arg-type]
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    clock.advance(170)
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    assert channel.posts == []
    clock.advance(15)
    await ev.evaluate(ev.clusters["prod"], SCOPE, urp())
    assert len(channel.posts) == 1
