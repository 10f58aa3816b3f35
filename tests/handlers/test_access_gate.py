"""The command service applies who may ask for what, and where, before it reads the cluster or
writes a run: through the fakes (in-memory run store, in-memory Strimzi behind a recording port)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from handlers.alerting.evaluator import AlertEvaluator, AlertQueries
from handlers.clusters import ManagedCluster
from handlers.commands.access_gate import asked
from handlers.commands.grammar import parse
from handlers.commands.service import CommandService
from handlers.commands.verbs import VERBS
from handlers.ports import ClusterRef
from runbooks.alerting.lifecycle import AlertKey, Condition, Observation
from runbooks.catalogue.steps import RUNBOOKS
from runbooks.engine.access import CONSOLE, AccessPolicy, Need, People
from runbooks.engine.models import Actor, ApprovalPolicy
from tests.fakes.alerts import FakeClock as AlertClock
from tests.fakes.alerts import MemoryAlertStore, MemoryLagReports, RecordingChannel
from tests.fakes.alerts import cluster as alert_cluster
from tests.fakes.store import MemoryClusterLocks, MemoryRunRepository
from tests.fakes.strimzi import FakeStrimzi
from tests.fakes.time import FakeClock, SequentialIds

pytestmark = pytest.mark.timeout(10)

PROD = "prod"
APPROVER, ONCALL, KAFKA, VIEWER, OUTSIDER = (Actor(id=i) for i in ("U0APP", "U0ONC", "U0KT", "U0VIEW", "U0OUT"))
ONCALL_GROUP_MEMBER = Actor(id="U0NEW")


class RecordingPort:
    """The cluster ports of a FakeStrimzi, recording every call: a refused command makes none."""

    def __init__(self, fake: FakeStrimzi) -> None:
        self.fake = fake
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.fake, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return target(*args, **kwargs)
        return call


class Members:
    """User groups as a chat front end knows them (MemberGroups)."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    async def groups_of(self, user_id: str, groups: Sequence[str]) -> tuple[str, ...]:
        self.asked.append((user_id, tuple(groups)))
        return tuple(g for g in groups if user_id in self.groups.get(g, ()))


def make_service(access: AccessPolicy, *, other: AccessPolicy | None = None,
                 alerts: AlertQueries | None = None) -> tuple[CommandService, RecordingPort]:
    port = RecordingPort(FakeStrimzi(PROD, version="4.2.0", zookeeper=False, instant_rolls=True))
    policy = ApprovalPolicy(approvers=(APPROVER.id,))
    clusters = {PROD: ManagedCluster(ref=ClusterRef(name=PROD, namespace="kafka", kafka=PROD), policy=policy,
                                     access=access)}
    if other is not None:
        clusters["dev"] = ManagedCluster(ref=ClusterRef(name="dev", namespace="kafka", kafka="dev"), policy=policy,
                                         access=other)
    runs = MemoryRunRepository()
    service = CommandService(clusters=clusters, runs=runs, locks=MemoryClusterLocks(runs.state), gateway=port,
                             admin=port, clock=FakeClock(), ids=SequentialIds(), alerts=alerts)
    return service, port


TEAMS = AccessPolicy(requesters=People(users=(ONCALL.id,), groups=("S0ONCALL",)),
                     runbooks={"upgrade": People(users=(KAFKA.id,))})


async def test_an_outsiders_restart_is_refused_privately_before_the_cluster_is_read() -> None:
    service, port = make_service(TEAMS)
    reply = await service.handle_text(f"restart {PROD}", OUTSIDER, channel="C0ANY")
    assert not reply.ok and reply.ephemeral and reply.run is None
    assert reply.text == ("U0OUT may not start restart on prod: only the requesters of prod (U0ONC, or members of "
                          "S0ONCALL) may.")
    assert port.calls == []
    assert "No runs" in (await service.list_runs(PROD)).text, "nothing was written"


async def test_a_requesters_restart_is_planned_and_created() -> None:
    service, port = make_service(TEAMS)
    reply = await service.handle_text(f"restart {PROD}", ONCALL, channel="C0ANY")
    assert reply.ok and reply.run is not None and reply.run.requested_by == ONCALL.id
    assert port.calls, "the planner read the cluster"


async def test_only_the_kafka_team_may_upgrade_while_on_call_may_restart() -> None:
    service, _ = make_service(TEAMS)
    refused = await service.handle_text(f"upgrade {PROD} 4.3.1", ONCALL)
    assert not refused.ok and "only the requesters of upgrade on prod (U0KT) may" in refused.text
    planned = await service.handle_text(f"upgrade {PROD} 4.3.1 --dry-run", ONCALL)
    assert planned.ok, "a dry run only looks: open to anyone who may view"
    allowed = await service.handle_text(f"upgrade {PROD} 4.3.1", KAFKA)
    assert allowed.ok and allowed.run is not None, allowed.text


async def test_without_requesters_only_an_approver_may_start_a_run() -> None:
    service, _ = make_service(AccessPolicy())
    refused = await service.handle_text(f"restart {PROD}", ONCALL)
    assert not refused.ok and "only the approvers of prod (U0APP) may" in refused.text
    assert (await service.handle_text(f"restart {PROD}", APPROVER)).ok


async def test_a_requester_group_member_is_found_by_the_front_ends_group_lookup() -> None:
    service, _ = make_service(TEAMS)
    assert not (await service.handle_text(f"restart {PROD}", ONCALL_GROUP_MEMBER)).ok, "no lookup: no groups"
    members = Members({"S0ONCALL": [ONCALL_GROUP_MEMBER.id]})
    service.access.groups = members
    reply = await service.handle_text(f"restart {PROD}", ONCALL_GROUP_MEMBER, channel="C0ANY")
    assert reply.ok, reply.text
    assert members.asked == [(ONCALL_GROUP_MEMBER.id, ("S0ONCALL",))]
    await service.handle_text(f"status {PROD}", ONCALL, channel="C0ANY")
    assert len(members.asked) == 1, "a member allowed by id is not looked up"


async def test_viewers_limit_status_lag_runs_and_run_to_them() -> None:
    access = TEAMS.model_copy(update={"viewers": People(users=(VIEWER.id,))})
    service, port = make_service(access)
    for text in (f"status {PROD}", f"lag {PROD}", f"alerts {PROD}", f"runs {PROD}", f"restart {PROD} --dry-run"):
        reply = await service.handle_text(text, OUTSIDER)
        verb = text.split()[0]
        assert not reply.ok and reply.text.startswith(f"U0OUT may not use {verb} on prod: only its viewers (U0VIEW)")
    assert port.calls == []
    assert (await service.handle_text(f"status {PROD}", VIEWER)).ok
    created = await service.handle_text(f"restart {PROD}", ONCALL)
    assert created.run is not None
    shown = await service.handle_text(f"run {created.run.id}", OUTSIDER)
    assert not shown.ok and "may not use run on prod" in shown.text
    assert (await service.handle_text(f"run {created.run.id}", VIEWER)).ok


async def test_runs_across_clusters_leave_out_the_clusters_one_may_not_view() -> None:
    service, _ = make_service(AccessPolicy(viewers=People(users=(VIEWER.id,))), other=AccessPolicy())
    await service.handle_text(f"restart {PROD}", APPROVER)
    await service.handle_text("restart dev", APPROVER)
    outsider = await service.handle_text("runs", OUTSIDER)
    viewer = await service.handle_text("runs", VIEWER)
    def clusters_listed(text: str) -> list[str]:
        return [row.split()[1] for row in text.splitlines()[1:]]
    assert clusters_listed(outsider.text) == ["dev"]
    assert sorted(clusters_listed(viewer.text)) == ["dev", "prod"]


async def test_runs_across_clusters_leave_out_the_clusters_not_commanded_from_here() -> None:
    """`runs` names no cluster, so it is not refused; but a bound cluster's runs are listed only where
    `runs prod` would be answered, not in a DM or the console."""
    service, _ = make_service(AccessPolicy(channels=("C0PROD",)), other=AccessPolicy())
    await service.handle_text(f"restart {PROD}", APPROVER, channel="C0PROD")
    await service.handle_text("restart dev", APPROVER, channel="C0PROD")

    def clusters_listed(text: str) -> list[str]:
        return sorted(row.split()[1] for row in text.splitlines()[1:])
    assert clusters_listed((await service.handle_text("runs", APPROVER, channel="C0PROD")).text) == ["dev", "prod"]
    assert clusters_listed((await service.handle_text("runs", APPROVER, channel="D0DM")).text) == ["dev"]
    assert clusters_listed((await service.handle_text("runs", APPROVER, console=True)).text) == ["dev"]


async def test_a_cluster_bound_to_channels_refuses_every_command_from_elsewhere() -> None:
    service, port = make_service(TEAMS.model_copy(update={"channels": ("C0PROD",)}))
    for text in (f"restart {PROD}", f"status {PROD}", f"runs {PROD}"):
        reply = await service.handle_text(text, ONCALL, channel="D0DM")
        assert not reply.ok and reply.text == "Commands for prod are taken in #C0PROD only (this was #D0DM)."
    console = await service.handle_text(f"status {PROD}", ONCALL, console=True)
    assert not console.ok and "(this was the console)" in console.text
    assert port.calls == []
    assert (await service.handle_text(f"restart {PROD}", ONCALL, channel="C0PROD")).ok


async def test_the_console_commands_a_bound_cluster_that_lists_it() -> None:
    service, _ = make_service(TEAMS.model_copy(update={"channels": ("C0PROD", CONSOLE)}))
    assert (await service.handle_text(f"restart {PROD}", ONCALL, console=True)).ok
    refused = await service.handle_text(f"restart {PROD}", OUTSIDER, console=True)
    assert not refused.ok and "may not start restart" in refused.text, "the console user is judged like anyone"


async def test_typed_resume_of_a_bound_clusters_run_is_refused_elsewhere_while_abort_stays_open() -> None:
    service, _ = make_service(TEAMS.model_copy(update={"channels": ("C0PROD",)}))
    created = await service.handle_text(f"restart {PROD}", ONCALL, channel="C0PROD")
    assert created.run is not None
    resumed = await service.handle_text(f"resume {created.run.id}", APPROVER, channel="D0DM")
    assert not resumed.ok and "taken in #C0PROD only" in resumed.text
    aborted = await service.handle_text(f"abort {created.run.id}", APPROVER, channel="D0DM")
    assert aborted.ok, "stopping a run is never bound to a channel"


async def firing_alert() -> tuple[AlertQueries, str]:
    """Alert queries over an in-memory store holding one firing under-replication alert on prod."""
    store, clock = MemoryAlertStore(), AlertClock()
    evaluator = AlertEvaluator(clusters={PROD: alert_cluster(PROD)}, store=store, clock=clock, owner="a",
                               channel=RecordingChannel())
    key = AlertKey(cluster=PROD, condition=Condition.UNDER_REPLICATED, subject="broker-2")
    await evaluator.evaluate(evaluator.clusters[PROD], {Condition.UNDER_REPLICATED},
                             [Observation(key=key, value=3, detail="3 partitions")])
    return AlertQueries(evaluator, store, MemoryLagReports(), clock), key.id


async def test_a_snooze_meets_its_alerts_cluster_channel_and_viewers_rules() -> None:
    """Muting a prod alert hides it from everyone: it is refused where prod's commands are not taken
    and to those who may not view prod, and the alert stays unmuted."""
    queries, alert = await firing_alert()
    access = TEAMS.model_copy(update={"channels": ("C0PROD",), "viewers": People(users=(VIEWER.id,))})
    service, _ = make_service(access, alerts=queries)
    elsewhere = await service.handle_text(f"snooze {alert} 2h", VIEWER, channel="D0DM")
    assert not elsewhere.ok and elsewhere.text == "Commands for prod are taken in #C0PROD only (this was #D0DM)."
    outsider = await service.handle_text(f"snooze {alert} 2h", OUTSIDER, channel="C0PROD")
    assert not outsider.ok and outsider.text.startswith("U0OUT may not use snooze on prod: only its viewers (U0VIEW)")
    assert "snoozed" not in (await queries.alerts(PROD)).text, "nothing was muted"
    allowed = await service.handle_text(f"snooze {alert} 2h", VIEWER, channel="C0PROD")
    assert allowed.ok and allowed.text.startswith(f"Snoozed {alert} (prod, ")
    unknown = await service.handle_text("snooze a-00000000 2h", OUTSIDER, channel="D0DM")
    assert not unknown.ok and unknown.text.startswith("No alert a-00000000"), "an unknown id names no cluster"


async def test_help_and_clusters_are_open_to_anyone_anywhere() -> None:
    service, _ = make_service(TEAMS.model_copy(update={"channels": ("C0PROD",), "viewers": People(users=("U0V",))}))
    assert (await service.handle_text("help", OUTSIDER, channel="D0DM")).ok
    assert (await service.handle_text("clusters", OUTSIDER, channel="D0DM")).ok


UNGATED = {"help", "clusters", "abort"}


@pytest.mark.parametrize(("verb", "example"), [(s.name, e) for s in VERBS.values() for e in s.examples])
def test_every_verb_that_names_a_cluster_or_a_run_is_gated_and_every_runbook_needs_a_requester(
        verb: str, example: str) -> None:
    """A verb added to the table cannot slip past the rule: each example of each verb is classified,
    and a runbook's verb without --dry-run asks for a requester."""
    what = asked(parse(example))
    if verb in UNGATED:
        assert what is None
        return
    if verb == "runs" and example == "/kafka runs":
        assert what is None, "runs over every cluster is filtered instead"
        return
    assert what is not None and what.verb == verb
    if verb in RUNBOOKS:
        assert what.need is (Need.VIEW if "--dry-run" in example else Need.REQUEST)
    assert what.need is not Need.REQUEST or VERBS[verb].mutating
