"""``/kafka mirror`` through the command service against the fakes (two in-memory Strimzi clusters,
the KafkaMirrorMaker2 fake, the canary fake): every bad input refused with its reason and nothing
created or read beyond the pre-flight; the dry run's plan; a run approved to done by the real worker
(real Redis), a FAILED task pausing it with its trace; status, pause, resume, remove."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import store
from bot.clock import RandomIds, SystemClock
from bot.store.alert_state import RedisCanaryStates
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from bot.store.run_events import RunEventBus
from bot.worker import Worker
from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.mirror_ports import CanaryFigures, ConnectorStatus, MirrorMakerStatus, TaskStatus
from handlers.ports import ClusterRef
from runbooks.alerting.mirror import CanaryState
from runbooks.engine.models import Actor, ApprovalPolicy, Run, RunState
from tests.fakes.mirror_canary import FakeMirrorCanary
from tests.fakes.mirror_makers import FakeMirrorMakers
from tests.fakes.store import MemoryClusterLocks, MemoryRunRepository
from tests.fakes.strimzi import FakeStrimzi
from tests.fakes.time import FakeClock, SequentialIds
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.timeout(30)
REQUESTER, APPROVER = Actor(id="U_REQ"), Actor(id="U_APP")
SOURCE = "east->west.MirrorSourceConnector"
CHECKPOINT = "east->west.MirrorCheckpointConnector"
TRACE = "org.apache.kafka.common.KafkaException: Failed to construct kafka consumer\n\tat a\n\tat b"


class Clusters:
    """The cluster ports of several in-memory Strimzi clusters, each call routed by the ClusterRef's name."""

    def __init__(self, *fakes: FakeStrimzi) -> None:
        self.fakes = {f.name: f for f in fakes}
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        def call(cluster: ClusterRef, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((cluster.name, name))
            return getattr(self.fakes[cluster.name], name)(cluster, *args, **kwargs)
        return call


def two_clusters() -> tuple[FakeStrimzi, FakeStrimzi]:
    east = FakeStrimzi("east", version="4.3.1", zookeeper=False, instant_rolls=True)
    west = FakeStrimzi("west", version="4.3.1", zookeeper=False, instant_rolls=True)
    east.create_topic("orders.eu", {0: [0, 1, 2], 1: [1, 2, 0]}, size_bytes={0: 2048, 1: 1024})
    east.create_topic("orders.us", {0: [0, 1, 2]})
    return east, west


def managed(*names: str) -> dict[str, ManagedCluster]:
    policy = ApprovalPolicy(approvers=(REQUESTER.id, APPROVER.id))
    return {n: ManagedCluster(ref=ClusterRef(name=n, namespace=f"kafka-{n}", kafka=n), policy=policy) for n in names}


def service(east: FakeStrimzi, west: FakeStrimzi, mirrors: FakeMirrorMakers,
            canary: FakeMirrorCanary | None = None) -> tuple[CommandService, MemoryRunRepository, Clusters]:
    ports = Clusters(east, west)
    runs = MemoryRunRepository()
    built = CommandService(clusters=managed("east", "west"), runs=runs, locks=MemoryClusterLocks(runs.state),
                           gateway=ports, admin=ports, clock=FakeClock(), ids=SequentialIds(),  # type: ignore[arg-type]
                           mirror_makers=mirrors, canary=canary or FakeMirrorCanary())
    return built, runs, ports


async def say(text: str, *, mirrors: FakeMirrorMakers | None = None,
              setup: Callable[[FakeStrimzi, FakeStrimzi, FakeMirrorMakers], Any] | None = None) -> tuple[str, bool]:
    east, west = two_clusters()
    fake = mirrors or FakeMirrorMakers()
    if setup is not None:
        setup(east, west, fake)
    built, runs, _ = service(east, west, fake)
    before = set(fake.objects)
    reply = await built.handle_text(text, REQUESTER)
    assert set(fake.objects) == before and not fake.created  # nothing created, whatever the answer
    created = bool(await runs.recent(None))
    return reply.text, created


@pytest.mark.parametrize(("text", "words"), [
    ("mirror north west --topics 'orders.*'", "unknown cluster 'north': the managed clusters are east, west"),
    ("mirror east south --topics 'orders.*'", "unknown cluster 'south'"),
    ("mirror east east --topics 'orders.*'", "the source and the target are both east"),
    ("mirror east west --topics 'orders.(*'", "--topics 'orders.(*' is not a valid regular expression"),
    ("mirror east west --topics 'orders.*' --groups '[billing'", "--groups '[billing' is not a valid regular"),
    ("mirror east west --topics 'payments.*'", "--topics 'payments.*' matches no topic on east (the whole name "
     "must match); its topics are: orders, orders.eu, orders.us"),
    ("mirror east west --topics 'orders.*' --name Bad_Name", "is not a valid"),
])
async def test_bad_input_is_refused_with_the_reason_and_nothing_is_created(text: str, words: str) -> None:
    answer, created = await say(text)
    assert words in answer and not created


def _existing(name: str, namespace: str, target: str, source: str, pattern: str, *, identity: bool = False,
              fake: FakeMirrorMakers) -> None:
    config = {"replication.policy.class": "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"} \
        if identity else {}
    spec = {"target": {"alias": target}, "mirrors": [{"source": {"alias": source}, "topicsPattern": pattern,
                                                      "sourceConnector": {"config": config}}]}
    fake.objects[(namespace, name)] = MirrorMakerStatus(name=name, namespace=namespace, spec=spec)


async def test_a_would_be_loop_is_refused() -> None:
    """--identity-names while west already mirrors orders.* back to east: MirrorMaker 2 could not tell copies
    from originals, so the copies would go round. Without --identity-names (prefixed names) it is fine."""
    fake = FakeMirrorMakers()
    _existing("west-to-east", "kafka-east", "east", "west", "orders.*", fake=fake)
    answer, created = await say("mirror east west --topics 'orders\\..*' --identity-names", mirrors=fake)
    assert "this would loop: KafkaMirrorMaker2 west-to-east mirrors west back to east" in answer
    assert "orders.eu" in answer and not created
    plain, _ = await say("mirror east west --topics 'orders\\..*' --dry-run", mirrors=fake)
    assert "Pre-flight" in plain and "Cannot" not in plain


async def test_a_name_already_used_and_a_topic_mirrored_twice_are_refused() -> None:
    fake = FakeMirrorMakers()
    _existing("east-to-west", "kafka-west", "west", "east", "nothing", fake=fake)
    answer, _ = await say("mirror east west --topics 'orders.*'", mirrors=fake)
    assert "a KafkaMirrorMaker2 named east-to-west already exists in west's namespace kafka-west" in answer
    again, _ = await say("mirror east west --topics 'orders.*' --name second", mirrors=fake)
    assert again  # the first mirror's pattern covers nothing: no double mirroring
    _existing("dr", "kafka-west", "west", "east", "orders.eu", fake=fake)
    twice, _ = await say("mirror east west --topics 'orders.*' --name third", mirrors=fake)
    assert "orders.eu is mirrored from east to west already, by KafkaMirrorMaker2 dr" in twice


async def test_a_topic_on_the_target_that_is_no_mirror_is_a_clash() -> None:
    def clash(east: FakeStrimzi, west: FakeStrimzi, fake: FakeMirrorMakers) -> None:
        west.create_topic("orders.eu", {0: [0, 1, 2]})

    answer, created = await say("mirror east west --topics 'orders\\..*' --identity-names", setup=clash)
    assert "west has a topic orders.eu already, which is no mirror of east's orders.eu" in answer and not created
    prefixed, _ = await say("mirror east west --topics 'orders.*' --dry-run", setup=clash)
    assert "east.orders.eu" in prefixed  # the default names do not clash


async def test_an_unhealthy_cluster_is_refused() -> None:
    def down(east: FakeStrimzi, west: FakeStrimzi, fake: FakeMirrorMakers) -> None:
        west.ready, west.reason = False, "NotReady"

    answer, created = await say("mirror east west --topics 'orders.*'", setup=down)
    assert "the target west is not Ready (NotReady)" in answer and not created


async def test_the_dry_run_lists_topics_target_names_the_resource_and_who_touches_what() -> None:
    answer, created = await say("mirror east west --topics 'orders\\..*' --groups billing --dry-run")
    assert not created
    assert "orders.eu (2 partitions, 3.0 KiB) → east.orders.eu" in answer
    assert "orders.us (1 partition, 0 B) → east.orders.us" in answer
    assert "[east: read, west: read]" in answer and "[west: write; east: canary topic]" in answer
    assert '"topicsPattern": "orders\\\\..*|kafka\\\\-chatops\\\\-canary\\\\-east\\\\-to\\\\-west"' in answer
    assert '"groupsPattern": "billing|kafka\\\\-chatops\\\\-canary\\\\-east\\\\-to\\\\-west"' in answer
    assert '"tasksMax": 4' in answer and '"autoRestart": {"enabled": true}' in answer  # 3 partitions + canary


# -- a run, driven by the real worker --------------------------------------------------------------


@pytest.fixture
async def bot(redis_url: str) -> AsyncIterator[dict[str, Any]]:
    client = await store.connect(redis_url)
    east, west = two_clusters()
    ports, mirrors, canary = Clusters(east, west), FakeMirrorMakers(), FakeMirrorCanary()
    clusters = managed("east", "west")
    runs, locks, bus = RedisRunRepository(store.RunStore(client)), RedisClusterLocks(store.ClusterLock(client)), \
        RunEventBus(client)
    clock, ids = SystemClock(), RandomIds()
    built = CommandService(clusters=clusters, runs=runs, locks=locks, gateway=ports, admin=ports,  # type: ignore[arg-type]
                           clock=clock, ids=ids, mirror_makers=mirrors, canary=canary,
                           canary_states=RedisCanaryStates(client))
    worker = Worker(runs=runs, locks=locks, leases=store.RunLease(client), clusters=clusters, gateway=ports,  # type: ignore[arg-type]
                    admin=ports, clock=clock, ids=ids, owner="test", poll_interval_s=0.02, scan_interval_s=0.1,  # type: ignore[arg-type]
                    mirror_makers=mirrors, canary=canary)
    bus.add_listener(worker.on_run_event)
    await bus.start()
    await worker.start()
    yield {"service": built, "runs": runs, "mirrors": mirrors, "canary": canary, "west": west,
           "canary_states": RedisCanaryStates(client)}
    for stop in (worker.stop, bus.stop, client.aclose):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop(), 2)


def running(tasks: int = 2) -> tuple[ConnectorStatus, ...]:
    return (ConnectorStatus(name=SOURCE, state="RUNNING", tasks=tuple(TaskStatus(id=i, state="RUNNING")
                                                                    for i in range(tasks))),
            ConnectorStatus(name=CHECKPOINT, state="RUNNING", tasks=(TaskStatus(id=0, state="RUNNING"),)))


async def drive(bot: dict[str, Any], run_id: str, until: Callable[[Run], bool],
                operator: Callable[[], None] | None = None) -> Run:
    async def settled() -> Run | None:
        loaded = await bot["runs"].load(run_id)
        assert loaded is not None
        run = loaded[0]
        if until(run):
            return run
        if operator is not None:
            operator()
        if run.state is RunState.AWAITING_APPROVAL and run.approval is not None:
            await bot["service"].actions.approve(run_id, APPROVER, step_id=run.approval.step_id)
        return None

    try:
        result: Run = await wait_for(settled, timeout=20, interval=0.02, message=f"run {run_id}")
    except AssertionError:
        loaded = await bot["runs"].load(run_id)
        run = loaded[0] if loaded else None
        steps = run and [(s.id, s.state.value, s.detail) for s in run.steps]
        raise AssertionError(f"run {run_id} did not settle: {steps} {run and run.state} {run and run.pause_reason}"
                             ) from None
    return result


async def test_a_mirror_is_set_up_proven_and_then_paused_resumed_and_removed(bot: dict[str, Any]) -> None:
    """Created as approved (in west's namespace, the canary topic on east first), done only once the
    connectors RUN, the canary arrived (figures on the card) and the canary group's offset was translated;
    then status shows it all, and pause/resume/remove are approved runs on west."""
    mirrors: FakeMirrorMakers = bot["mirrors"]
    canary: FakeMirrorCanary = bot["canary"]
    reply = await bot["service"].handle_text("mirror east west --topics 'orders.*' --groups billing --name dr",
                                             REQUESTER)
    assert reply.run is not None and reply.run.cluster == "west"  # the run holds the target's lock

    def operator() -> None:
        if ("kafka-west", "dr") in mirrors.objects:
            mirrors.operator_reports("kafka-west", "dr", connectors=running())

    run = await drive(bot, reply.run.id, lambda r: r.state.terminal, operator)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert mirrors.created == [("kafka-west", "dr")]
    assert canary.topics["east"]["kafka-chatops-canary-dr"] == 50
    assert canary.rounds[0][:2] == ("kafka-chatops-canary-dr", "east.kafka-chatops-canary-dr")
    assert run.step("mirror-canary").detail.startswith("50/50 canary records arrived, 0 missing, 0 duplicated; "
                                                       "latency p50 40 ms, p99 90 ms")
    assert "kafka-chatops-canary-dr's offsets translated (east.kafka-chatops-canary-dr-0: 50 on east → 50 on west)" \
        in run.step("verify-checkpoints").detail

    bot["west"].create_topic("east.orders.eu", {0: [0, 1, 2], 1: [1, 2, 0]})  # MirrorMaker 2 created it
    canary.topics["east"]["orders.eu"], canary.topics.setdefault("west", {})["east.orders.eu"] = 10, 4
    canary.times[("east", "orders.eu", 0, 4)] = datetime.now(UTC) - timedelta(seconds=30)
    status = await bot["service"].handle_text("mirror status dr", REQUESTER)
    assert re.search(r"orders\.eu → east\.orders\.eu: 6 records behind, 3\d s behind", status.text), status.text
    assert "Mirror dr: east → west" in status.text and f"{SOURCE} RUNNING (tasks: 0 RUNNING, 1 RUNNING)" in status.text
    assert "canary: 50/50 canary records arrived" in status.text

    paused = await bot["service"].handle_text("mirror pause dr", REQUESTER)
    assert paused.run is not None and paused.run.cluster == "west"

    def pauses() -> None:
        if mirrors.objects[("kafka-west", "dr")].generation > 1:
            mirrors.operator_reports("kafka-west", "dr", connectors=tuple(
                c.model_copy(update={"state": "PAUSED", "tasks": tuple(t.model_copy(update={"state": "PAUSED"})
                                                                       for t in c.tasks)}) for c in running()))

    assert (await drive(bot, paused.run.id, lambda r: r.state.terminal, pauses)).state is RunState.SUCCEEDED
    states = {m["sourceConnector"]["state"] for m in mirrors.objects[("kafka-west", "dr")].spec["mirrors"]}
    assert states == {"paused"}
    resumed = await bot["service"].handle_text("mirror resume dr", REQUESTER)
    assert resumed.run is not None

    def resumes() -> None:
        mirrors.operator_reports("kafka-west", "dr", connectors=running())

    assert (await drive(bot, resumed.run.id, lambda r: r.state.terminal, resumes)).state is RunState.SUCCEEDED
    removed = await bot["service"].handle_text("mirror remove dr", REQUESTER)
    assert removed.run is not None
    assert "The canary topic kafka-chatops-canary-dr stays on the source" in removed.run.steps[0].spec.summary
    assert (await drive(bot, removed.run.id, lambda r: r.state.terminal)).state is RunState.SUCCEEDED
    assert mirrors.deleted == [("kafka-west", "dr")]


async def test_a_failed_task_pauses_the_run_with_its_trace(bot: dict[str, Any]) -> None:
    """Ready=True next to a FAILED task (Strimzi #5715) is no success: the run pauses, the trace on the card."""
    mirrors: FakeMirrorMakers = bot["mirrors"]
    reply = await bot["service"].handle_text("mirror east west --topics 'orders.*' --name dr", REQUESTER)
    assert reply.run is not None

    def fails() -> None:
        if ("kafka-west", "dr") in mirrors.objects:
            mirrors.operator_reports("kafka-west", "dr", ready=True, connectors=(ConnectorStatus(
                name=SOURCE, state="RUNNING", tasks=(TaskStatus(id=0, state="FAILED", trace=TRACE),)),))

    run = await drive(bot, reply.run.id, lambda r: r.state is RunState.PAUSED, fails)
    assert run.current_step is not None and run.current_step.id == "await-mirror"
    assert run.pause_reason is not None
    assert f"task 0 of {SOURCE} FAILED: org.apache.kafka.common.KafkaException: Failed to construct" in run.pause_reason


async def test_a_missing_canary_record_pauses_the_run(bot: dict[str, Any]) -> None:
    mirrors: FakeMirrorMakers = bot["mirrors"]
    bot["canary"].figures = CanaryFigures(sent=50, received=47, p50_ms=30.0, p99_ms=80.0)
    reply = await bot["service"].handle_text("mirror east west --topics 'orders.*' --name dr", REQUESTER)
    assert reply.run is not None

    def operator() -> None:
        if ("kafka-west", "dr") in mirrors.objects:
            mirrors.operator_reports("kafka-west", "dr", connectors=running())

    run = await drive(bot, reply.run.id, lambda r: r.state is RunState.PAUSED, operator)
    assert run.current_step is not None and run.current_step.id == "mirror-canary"
    assert "the canary did not arrive whole: 47/50 canary records arrived, 3 missing" in (run.pause_reason or "")


async def test_an_invalid_resource_pauses_the_run_at_once_with_the_operators_reason(bot: dict[str, Any]) -> None:
    """NotReady InvalidResourceException is no state to wait out: the run pauses with the operator's words."""
    mirrors: FakeMirrorMakers = bot["mirrors"]
    reply = await bot["service"].handle_text("mirror east west --topics 'orders.*' --name dr", REQUESTER)
    assert reply.run is not None

    def refuses() -> None:
        if ("kafka-west", "dr") in mirrors.objects:
            mirrors.operator_reports("kafka-west", "dr", ready=False, reason="InvalidResourceException",
                                     message="spec.mirrors[0].topicsPattern is not a regular expression")

    run = await drive(bot, reply.run.id, lambda r: r.state is RunState.PAUSED, refuses)
    assert run.current_step is not None and run.current_step.id == "await-mirror"
    assert "NotReady: InvalidResourceException: spec.mirrors[0].topicsPattern" in (run.pause_reason or "")


async def test_status_shows_the_monitors_canary_latency_from_the_state_it_keeps(bot: dict[str, Any]) -> None:
    """The mirror monitor's canary state in Redis (``RedisCanaryStates``, what the canary alert reads) is what
    status shows: when the last canary record arrived and its latency then; none kept yet is said too."""
    mirrors: FakeMirrorMakers = bot["mirrors"]
    spec = {"target": {"alias": "west", "bootstrapServers": "west:9092"},
            "mirrors": [{"source": {"alias": "east", "bootstrapServers": "east:9092"},
                         "topicsPattern": "orders.*|kafka-chatops-canary-dr"}]}
    await mirrors.create_mirror_maker(ClusterRef(name="west", namespace="kafka-west", kafka="west"), "dr", spec)
    before = await bot["service"].handle_text("mirror status dr", REQUESTER)
    assert "canary (monitor): not sent yet (the mirror monitor sends one every 30 s)" in before.text, before.text
    arrived = datetime.now(UTC) - timedelta(seconds=40)
    await bot["canary_states"].save(CanaryState(
        cluster="west", mirror="dr", source="east", topic="kafka-chatops-canary-dr",
        remote_topic="east.kafka-chatops-canary-dr", watching_since=arrived - timedelta(hours=1),
        last_sent_at=arrived, last_arrival_at=arrived, last_latency_ms=85.0))
    status = await bot["service"].handle_text("mirror status dr", REQUESTER)
    assert re.search(rf"canary \(monitor\): last arrived {arrived:%Y-%m-%d %H:%M:%S} UTC \((40|41) s ago\), "
                     r"latency then 85 ms", status.text), status.text
