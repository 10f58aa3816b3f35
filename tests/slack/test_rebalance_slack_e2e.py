"""KafkaRebalance cards end to end: ``python -m bot run --http`` (monitors on) against the stub Slack Web
API and a sandbox with the Cruise Control twin (``up --brokers 3 --broker-only 1 --cruise-control``),
clicked with signed ``block_actions`` as Slack sends them. The KafkaRebalances are created the way a
user does with kubectl (the kubernetes client against the sandbox's API); the twin executes them with
real reassignments on the real brokers.

The tests run in file order, as one story: ``remove-brokers [3]`` is refused to an outsider, approved
by an approver and drained (broker 3 ends empty); then a throttled ``add-brokers [3]`` is approved and
stopped from the card mid-move. A watch on the KafkaRebalances records every annotation they carried,
so "the bot never set strimzi.io/rebalance-auto-approval" is judged on everything, not on the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kubernetes import watch
from kubernetes.client.rest import ApiException

from bot.slack.rebalance_cards import ACTION_PREFIX
from tests.fakes.cluster import APPROVER, APPROVER_GROUP, OUTSIDER, REQUESTER
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import GROUP, VERSION, StrimziCluster, produce, with_admin
from tests.slack.bot_server import SlackBotProcess, bot_env, clusters_yaml
from tests.slack.payloads import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    block_actions_body,
    block_actions_payload,
    card_text,
    find_button,
    signed_headers,
)
from tests.slack.stub_web_api import Message, StubWebApi

pytestmark = pytest.mark.sandbox

REBALANCES = "kafkarebalances"
TOPIC = "payload"
PARTITIONS = 4
# Records of 1 kB: 4 MB a partition. A throttled move is not 4 MB at 20 kB/s: Kafka's replication
# quota lets one fetch of up to replica.fetch.max.bytes (1 MB) through and then waits for it to leave
# the 11 s quota window, so a move runs at about 1 MB per 11 s. A 1 MB partition moved in one fetch
# and the whole proposal could finish before Stop was pressed; a 4 MB one takes about 35 s.
RECORDS_PER_PARTITION = 4000
APPROVE, REFRESH, STOP = (f"{ACTION_PREFIX}{a}" for a in ("approve", "refresh", "stop"))
REBALANCE_ANNOTATION = "strimzi.io/rebalance"
AUTO_APPROVAL = "strimzi.io/rebalance-auto-approval"
CARD_POLL_S = 2  # KAFKA_CHATOPS_REBALANCE_POLL_INTERVAL: a throttled move lasts long enough to be seen
CARD_WAIT_S = 40.0


class AnnotationRecorder:
    """Every set of annotations each KafkaRebalance carried, through a real watch (its own thread)."""

    def __init__(self, cluster: StrimziCluster) -> None:
        self.cluster = cluster
        self.seen: dict[str, list[dict[str, str]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rebalance-watch", daemon=True)
        self._version: str | None = None

    def __enter__(self) -> AnnotationRecorder:
        self._version = self.cluster.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.cluster.namespace, REBALANCES)["metadata"].get("resourceVersion")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def values(self, name: str, key: str) -> list[str]:
        return [a[key] for a in self.seen.get(name, []) if key in a]

    def _run(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(self.cluster.custom.list_namespaced_custom_object, GROUP, VERSION,
                                      self.cluster.namespace, REBALANCES, resource_version=self._version,
                                      timeout_seconds=2):
                    meta = event["object"]["metadata"]
                    self._version = meta.get("resourceVersion")
                    self.seen.setdefault(meta["name"], []).append(dict(meta.get("annotations") or {}))
                    if self._stop.is_set():
                        break
            except ApiException as exc:
                if exc.status != 410:
                    raise
                self._version = None
            finally:
                w.stop()


class Rig:
    """The bot process, the stub, the sandbox's Kubernetes API, and the moves a user makes."""

    def __init__(self, bot: SlackBotProcess, api: StubWebApi, cluster: StrimziCluster,
                 annotations: AnnotationRecorder) -> None:
        self.bot, self.api, self.cluster, self.annotations = bot, api, cluster, annotations

    # -- Kubernetes, as kubectl would -----------------------------------------------------------
    def create_rebalance(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KafkaRebalance",
                "metadata": {"name": name, "labels": {"strimzi.io/cluster": self.cluster.name}}, "spec": spec}
        self.cluster.custom.create_namespaced_custom_object(GROUP, VERSION, self.cluster.namespace, REBALANCES, body)

    def rebalance(self, name: str) -> dict[str, Any]:
        return self.cluster.get(REBALANCES, name)

    def state(self, name: str) -> str | None:
        conditions = (self.rebalance(name).get("status") or {}).get("conditions") or []
        return next((c["type"] for c in conditions if c.get("status") == "True"), None)

    def wait_state(self, name: str, wanted: str, timeout: float = 60.0) -> dict[str, Any]:
        wait_until(lambda: self.state(name) == wanted, timeout=timeout, interval=0.3,
                   message=f"KafkaRebalance {name} {wanted} (it is {self.state(name)})")
        return self.rebalance(name)

    # -- Slack --------------------------------------------------------------------------------
    def posts_of(self, name: str) -> list[Any]:
        headline = f"KafkaRebalance {self.cluster.namespace}/{name} on {self.cluster.name}:"
        return [c for c in self.api.calls_to("chat.postMessage", ok_only=True)
                if headline in card_text(c.args.get("blocks") or [])]

    def card(self, name: str) -> Message:
        posts = self.posts_of(name)
        assert len(posts) == 1, f"{len(posts)} cards posted for {name} (log: {self.bot.log_path})"
        assert posts[0].args["channel"] == CHANNEL, "the card goes to the cluster's channel"
        headline = f"KafkaRebalance {self.cluster.namespace}/{name} on {self.cluster.name}:"
        card, = (m for m in self.api.cards() if m.channel == CHANNEL and headline in card_text(m.blocks))
        return card

    def wait_card(self, name: str, shows: str, timeout: float = CARD_WAIT_S) -> Message:
        def showing() -> Message | None:
            if not self.posts_of(name):
                return None
            card = self.card(name)
            return card if shows in card_text(card.blocks) else None
        found = wait_until(showing, timeout=timeout, interval=0.2,
                           message=f"the card of {name} to show {shows!r} (log: {self.bot.log_path})")
        assert isinstance(found, Message)
        return found

    def press(self, card: Message, action_id: str, user: str) -> None:
        button = find_button(card.blocks, action_id)
        assert button is not None, f"no {action_id} on the card:\n{card_text(card.blocks)}"
        body = block_actions_body(block_actions_payload(action_id, button["value"], user, message_ts=card.ts,
                                                        response_url=self.api.response_url(f"click-{user}")))
        status, answer, seconds = self.bot.post(body, signed_headers(body))
        assert status == 200 and seconds < 3, (status, answer, seconds)

    def answers(self, user: str, at_least: int) -> list[str]:
        def replies() -> list[str]:
            return [c.args["text"] for c in self.api.calls_to("response_url") if c.args.get("key") == f"click-{user}"]
        wait_until(lambda: len(replies()) >= at_least, timeout=10, message=f"{at_least} answer(s) to {user}")
        return replies()


def replicas_on(bootstrap: str, broker: int) -> list[str]:
    topics = with_admin(bootstrap, lambda a: a.describe_topics())
    return [f"{t['name']}-{p['partition_index']}" for t in topics for p in t["partitions"]
            if broker in p["replica_nodes"]]


def shown(value: float) -> str:
    """A figure as the card prints it: whole above 100 or when whole, else one decimal."""
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.1f}"


@pytest.fixture(scope="module")
def rig(sandbox_factory: Callable[..., SandboxInfo], redis_server: RedisServer, stub_api_server: StubWebApi,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    sandbox = sandbox_factory("cc-slack", brokers=3, extra_args=("--broker-only", "1", "--cruise-control"))
    api_client = sandbox.api_client()
    bot: SlackBotProcess | None = None
    try:
        cluster = StrimziCluster(api_client, sandbox.namespace, sandbox.cluster)
        cluster.create_topic(TOPIC, partitions=PARTITIONS, replicas=3)
        cluster.wait_topic_ready(TOPIC)
        for partition in range(PARTITIONS):
            produce(cluster.bootstrap(), TOPIC, [bytes(1000)] * RECORDS_PER_PARTITION, partition=partition)

        redis_server.ensure_running()
        with redis.Redis.from_url(redis_server.url) as admin:
            admin.flushall()
        stub_api_server.reset()
        stub_api_server.usergroups = {APPROVER_GROUP: []}
        workdir = Path(tmp_path_factory.mktemp("rebalance-slack"))
        config = workdir / "clusters.yaml"
        config.write_text(clusters_yaml(sandbox.cluster, namespace=sandbox.namespace, approvers=[REQUESTER, APPROVER],
                                        approver_groups=[APPROVER_GROUP]) + f"    channel: {CHANNEL}\n")
        env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                      SLACK_API_URL=stub_api_server.url, REDIS_URL=redis_server.url,
                      KAFKA_CHATOPS_CONFIG=str(config), KUBECONFIG=sandbox.kubeconfig, KAFKA_CHATOPS_MONITORS="true",
                      KAFKA_CHATOPS_REBALANCE_POLL_INTERVAL=str(CARD_POLL_S))
        bot = SlackBotProcess(env, workdir / "bot.log", http=True).start()
        with AnnotationRecorder(cluster) as annotations:
            yield Rig(bot, stub_api_server, cluster, annotations)
    finally:
        if bot is not None:
            bot.stop()
        api_client.close()
        sandbox.down()  # free the cores for the next module


def test_remove_brokers_approved_on_the_card_drains_the_broker(rig: Rig) -> None:
    """One card with the proposal's figures; an outsider's Approve refused privately and nothing written;
    an approver's Approve sets approve; the twin moves the data (Rebalancing -> Ready); the card shows
    Ready; broker 3 holds no replica; the bot never set the auto-approval annotation."""
    boot = rig.cluster.bootstrap()
    on_broker_3 = replicas_on(boot, 3)
    assert on_broker_3, "RF 3 over 4 brokers puts replicas on broker 3"
    rig.create_rebalance("drain-3", {"mode": "remove-brokers", "brokers": [3]})
    result = rig.wait_state("drain-3", "ProposalReady")["status"]["optimizationResult"]
    assert result["numReplicaMovements"] == len(on_broker_3)

    card = rig.wait_card("drain-3", ": ProposalReady")
    text = card_text(card.blocks)
    assert "Mode: remove-brokers · brokers: 3" in text
    assert (f"Proposal: {shown(result['numReplicaMovements'])} replica movements, "
            f"{shown(result['numLeaderMovements'])} leader movements, "
            f"{shown(result['dataToMoveMB'])} MB to move") in text
    assert (f"Balancedness: {shown(result['onDemandBalancednessScoreBefore'])} before → "
            f"{shown(result['onDemandBalancednessScoreAfter'])} after") in text
    assert find_button(card.blocks, STOP) is None and find_button(card.blocks, REFRESH) is not None

    rig.press(card, APPROVE, OUTSIDER)
    assert rig.answers(OUTSIDER, 1) == [f"{OUTSIDER} is not an approver for cluster {rig.cluster.name}: "
                                        "nothing was changed."]
    assert REBALANCE_ANNOTATION not in (rig.rebalance("drain-3")["metadata"].get("annotations") or {})
    assert rig.state("drain-3") == "ProposalReady"

    rig.press(card, APPROVE, APPROVER)
    assert rig.answers(APPROVER, 1) == [
        f"Set strimzi.io/rebalance=approve on KafkaRebalance {rig.cluster.namespace}/drain-3: the operator acts on "
        "it at its next reconciliation, and the card follows."]
    done = rig.wait_state("drain-3", "Ready")
    assert "approve" in rig.annotations.values("drain-3", REBALANCE_ANNOTATION), "the watch saw the bot's approve"
    assert REBALANCE_ANNOTATION not in (done["metadata"].get("annotations") or {}), "the twin took it off"
    assert replicas_on(boot, 3) == []

    ready = rig.wait_card("drain-3", ": Ready")
    text = card_text(ready.blocks)
    assert "Ready: the rebalance finished." in text and f"<@{APPROVER}> pressed Approve at" in text
    assert OUTSIDER not in text
    assert find_button(ready.blocks, APPROVE) is None and find_button(ready.blocks, STOP) is None
    assert len(rig.posts_of("drain-3")) == 1, "one card, edited in place"
    assert rig.annotations.values("drain-3", AUTO_APPROVAL) == []


def test_throttled_add_brokers_stopped_from_the_card_ends_stopped(rig: Rig) -> None:
    """add-brokers [3] throttled to 20 kB/s: approved on the card, Stop pressed while Rebalancing (the
    card offers it then), the twin cancels the moves: Stopped, on the resource and on the card."""
    boot = rig.cluster.bootstrap()
    rig.create_rebalance("fill-3", {"mode": "add-brokers", "brokers": [3], "replicationThrottle": 20_000,
                                    "concurrentPartitionMovementsPerBroker": 1})
    planned = rig.wait_state("fill-3", "ProposalReady")["status"]["optimizationResult"]["numReplicaMovements"]
    assert planned > 0 and replicas_on(boot, 3) == []
    card = rig.wait_card("fill-3", ": ProposalReady")
    rig.press(card, APPROVE, REQUESTER)
    rig.wait_state("fill-3", "Rebalancing")

    rebalancing = rig.wait_card("fill-3", ": Rebalancing")
    assert "Rebalancing:" in card_text(rebalancing.blocks)
    assert rig.state("fill-3") == "Rebalancing", "the throttle keeps it moving while the card is pressed"
    rig.press(rebalancing, STOP, APPROVER)
    assert rig.answers(APPROVER, 2)[-1].startswith(f"Set strimzi.io/rebalance=stop on KafkaRebalance "
                                                   f"{rig.cluster.namespace}/fill-3")
    rig.wait_state("fill-3", "Stopped")
    assert not with_admin(boot, lambda a: a.list_partition_reassignments()), "stop cancels the moves in flight"
    assert len(replicas_on(boot, 3)) < planned, "stopped before the proposal was carried out"

    stopped = card_text(rig.wait_card("fill-3", ": Stopped").blocks)
    assert "left partly rebalanced" in stopped
    assert f"<@{REQUESTER}> pressed Approve at" in stopped and f"<@{APPROVER}> pressed Stop at" in stopped
    assert list(dict.fromkeys(rig.annotations.values("fill-3", REBALANCE_ANNOTATION))) == ["approve", "stop"]
    assert len(rig.posts_of("fill-3")) == 1
    assert not [name for name, seen in rig.annotations.seen.items() if any(AUTO_APPROVAL in a for a in seen)], \
        "the bot never set the auto-approval annotation, on any KafkaRebalance"
