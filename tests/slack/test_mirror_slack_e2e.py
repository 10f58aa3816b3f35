"""``/kafka mirror`` from Slack, end to end (issue 14 §4): ``python -m bot run --http`` against the stub
Web API, two 3-broker Kafka 4.3.1 sandboxes (east and west, each its own Kubernetes API and kubeconfig
in the clusters file; the pair of tests/fixtures/mirror_pair.py), real MirrorMaker 2 run by west's
operator twin, requests signed as Slack signs them.

``/kafka mirror east west --topics 'orders.*' --groups 'billing'`` typed by a requester, the approval
clicked by an approver on the card: the KafkaMirrorMaker2 is created in west's namespace with its
connectors RUNNING; 10,000 records produced on east (RF 3 topics, half before the command and half once
the mirror runs) are all on west exactly once under ``east.<topic>`` (read back from west: counts and
values); the card the stub holds shows the canary's latency figures; billing's offsets committed on
east are translated on west. Then a ``--topics`` regex that matches nothing is answered with the reason,
and nothing is created: no run, no resource, no canary topic.

What is asserted is read with the test's own clients (kafka-python, the kubernetes client) and from the
stub's recorded messages, never through the bot's code.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from runbooks.engine.models import RunState
from tests.engine.test_mirror_e2e import remote_values
from tests.fakes.cluster import APPROVER, APPROVER_GROUP, REQUESTER
from tests.fixtures.mirror_pair import mirror_makers
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import StrimziCluster, end_offsets, produce, with_admin
from tests.sandbox.test_mirrormaker2_twin import PLURAL, all_running, ready
from tests.slack.bot_server import SlackBotProcess, bot_env
from tests.slack.payloads import BOT_TOKEN, CHANNEL, SIGNING_SECRET, card_text
from tests.slack.stub_web_api import StubWebApi
from tests.slack.test_sandbox_scenario import Scenario

pytestmark = pytest.mark.sandbox

TOPICS = {"orders.eu": 3, "orders.us": 2}  # partitions, each replicated 3 times
RECORDS = 10_000  # over both topics; half before the command, half once the mirror runs
GROUP = "billing"
NAME = "east-to-west"  # the mirror's default name: <source>-to-<target>
SOURCE = "east->west.MirrorSourceConnector"
CHECKPOINT = "east->west.MirrorCheckpointConnector"
COMMAND = "mirror east west --topics 'orders.*' --groups 'billing'"
CANARY_FIGURES = re.compile(r"50/50 canary records arrived, 0 missing, 0 duplicated; latency p50 ([\d,]+) ms, "
                            r"p99 ([\d,]+) ms")


def values_of(topic: str, start: int, stop: int) -> list[bytes]:
    return [f"{topic}-{i:05d}".encode() for i in range(start, stop)]  # 14 bytes each: small on the disk


def per_topic() -> dict[str, int]:
    return {"orders.eu": RECORDS * 3 // 5, "orders.us": RECORDS * 2 // 5}


def produce_share(east: SandboxInfo, half: int) -> None:
    """Half ``half`` (0 or 1) of each topic's records, spread over its partitions."""
    for topic, total in per_topic().items():
        start, stop = (0, total // 2) if half == 0 else (total // 2, total)
        for partition in range(TOPICS[topic]):
            chosen = [v for i, v in zip(range(start, stop), values_of(topic, start, stop), strict=True)
                      if i % TOPICS[topic] == partition]
            produce(east.bootstrap_servers, topic, chosen, partition=partition)


def billing_commits(east: SandboxInfo) -> dict[TopicPartition, int]:
    """billing's offsets on east: each partition of orders.eu part-way through the first half."""
    wanted = {TopicPartition("orders.eu", p): 300 + 100 * p for p in range(TOPICS["orders.eu"])}
    deadline = time.monotonic() + 60
    while True:  # the group coordinator may still be moving in on a fresh cluster
        consumer = KafkaConsumer(bootstrap_servers=east.bootstrap_servers, group_id=GROUP, enable_auto_commit=False)
        try:
            consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in wanted.items()})
            return wanted
        except KafkaError:
            assert time.monotonic() < deadline, f"could not commit {GROUP} on east"
            time.sleep(0.5)
        finally:
            consumer.close()


def committed_on(bootstrap: str, topic: str, partitions: int) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close()


class MirrorRig:
    def __init__(self, scenario: Scenario, east: SandboxInfo, west: SandboxInfo, commits: dict[TopicPartition, int]):
        self.scenario, self.east, self.west, self.commits = scenario, east, west, commits

    def command(self, text: str, user: str) -> str:
        """The command's answer: the ack's text, or (past the ack budget) what follows on its response_url."""
        before = len(self.scenario.api.calls_to("response_url"))
        answer = str(self.scenario.command(text, user)["text"])
        if not answer.startswith("Working on"):
            return answer

        def late() -> str | None:
            calls = [c for c in self.scenario.api.calls_to("response_url")[before:] if c.args.get("key") == "cmd"]
            return str(calls[0].args.get("text")) if calls else None
        return str(wait_until(late, timeout=60, interval=0.2, message=f"the answer to /kafka {text}"))

    def topics(self, info: SandboxInfo) -> set[str]:
        return set(with_admin(info.bootstrap_servers, lambda a: a.list_topics()))

    def strimzi_west(self) -> StrimziCluster:
        return StrimziCluster(self.west.api_client(), self.west.namespace, self.west.cluster)


def clusters_file(path: Path, east: SandboxInfo, west: SandboxInfo) -> Path:
    lines = ["clusters:"]
    for name, info in (("east", east), ("west", west)):
        lines += [f"  {name}:", f"    namespace: {info.namespace}", f"    kafka: {info.cluster}",
                  f"    kubeconfig: {info.kubeconfig}", f"    approvers: {json.dumps([REQUESTER, APPROVER])}",
                  f"    approver_groups: [{APPROVER_GROUP}]", "    four_eyes: true", f"    channel: {CHANNEL}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def rig(mirror_clusters: tuple[SandboxInfo, SandboxInfo], redis_server: RedisServer, stub_api_server: StubWebApi,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorRig]:
    east, west = mirror_clusters
    with_admin(east.bootstrap_servers, lambda a: a.create_topics([NewTopic(t, p, 3) for t, p in TOPICS.items()]))
    produce_share(east, 0)
    commits = billing_commits(east)
    redis_server.ensure_running()
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.flushall()
    stub_api_server.reset()
    stub_api_server.usergroups = {APPROVER_GROUP: []}
    workdir = Path(tmp_path_factory.mktemp("mirror-slack"))
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=stub_api_server.url,
                  REDIS_URL=redis_server.url, KAFKA_CHATOPS_CONFIG=str(clusters_file(workdir / "clusters.yaml", east,
                                                                                       west)),
                  KUBECONFIG=west.kubeconfig, KAFKA_CHATOPS_MONITORS="false", KAFKA_CHATOPS_POLL_INTERVAL="0.3")
    bot = SlackBotProcess(env, workdir / "bot.log", http=True).start()
    try:
        yield MirrorRig(Scenario(bot, stub_api_server, redis_server.url, west), east, west, commits)
    finally:
        bot.stop()


def test_mirror_from_slack_copies_every_record_once_and_proves_it_on_the_card(rig: MirrorRig) -> None:
    east, west, scenario = rig.east, rig.west, rig.scenario
    answer = rig.command(COMMAND, REQUESTER)
    found = re.search(r"The card of `([^`]+)`", answer)
    assert found, answer
    run_id = found.group(1)
    assert scenario.run(run_id).cluster == "west"  # the run holds the target's lock

    scenario.click("kco_approve", scenario.approve_value(run_id, "create-mirror"), APPROVER)
    final = scenario.wait_finished(run_id)
    assert final.state is RunState.SUCCEEDED, (final.outcome, [(s.id, s.detail) for s in final.steps])
    assert [e.step_id for e in scenario.audit(run_id) if e.action == "approve"] == ["create-mirror"]
    assert [e.actor for e in scenario.audit(run_id) if e.action == "approve"] == [APPROVER]

    strimzi = rig.strimzi_west()
    try:  # the resource in west's namespace, its connectors and tasks RUNNING as Connect reports them
        resource = strimzi.get(PLURAL, NAME)
    finally:
        strimzi.api.close()
    assert resource["metadata"]["namespace"] == west.namespace
    mirror = resource["spec"]["mirrors"][0]
    assert (mirror["source"]["alias"], resource["spec"]["target"]["alias"]) == ("east", "west")
    assert mirror["topicsPattern"].startswith("orders.*|") and mirror["groupsPattern"].startswith("billing|")
    status = resource["status"]
    assert ready(status) and all_running(status, SOURCE, min_tasks=1) and all_running(status, CHECKPOINT, min_tasks=1)

    produce_share(east, 1)  # the second half, while the mirror runs
    for topic, partitions in TOPICS.items():
        remote, total = f"east.{topic}", per_topic()[topic]
        wait_until(lambda r=remote, p=partitions, n=total: sum(end_offsets(west.bootstrap_servers, r, p).values()) >= n,
                   timeout=90, interval=1, message=f"{total} records on west's {remote}")
    time.sleep(3)  # a duplicate would come right behind the last record
    for topic, partitions in TOPICS.items():
        remote, total = f"east.{topic}", per_topic()[topic]
        assert sum(end_offsets(west.bootstrap_servers, remote, partitions).values()) == total, remote
        copied = remote_values(west, remote, partitions)
        assert len(copied) == len(set(copied)) == total, f"{remote}: {len(copied)} read, {len(set(copied))} distinct"
        assert set(copied) == set(values_of(topic, 0, total))
    assert "east.kafka-chatops-canary-east-to-west" in rig.topics(west)

    text = card_text(scenario.final_card(run_id))  # the card as the stub holds it after its last edit
    figures = CANARY_FIGURES.search(text)
    assert figures, text
    p50, p99 = (int(v.replace(",", "")) for v in figures.groups())
    assert 0 <= p50 <= p99
    assert f"kafka-chatops-canary-{NAME}'s offsets translated" in text, text

    def synced() -> dict[int, int] | None:
        found = committed_on(west.bootstrap_servers, "east.orders.eu", TOPICS["orders.eu"])
        return {p: o for p, o in found.items() if o is not None} if None not in found.values() else None

    translated = wait_until(synced, timeout=60, interval=2, message=f"{GROUP}'s offsets synced to west")
    for tp, offset in rig.commits.items():  # translated into the copy's offsets, never past the original
        assert 0 < translated[tp.partition] <= offset, (tp, translated)


def test_a_topics_regex_that_matches_nothing_is_answered_and_creates_nothing(rig: MirrorRig) -> None:
    runs_before = len(rig.scenario.redis.keys("kco:run:*"))
    mirrors_before, east_before = mirror_makers(rig.west), rig.topics(rig.east)
    answer = rig.command("mirror east west --topics 'invoices.*' --name invoices", REQUESTER)
    assert "--topics 'invoices.*' matches no topic on east (the whole name must match)" in answer, answer
    assert "orders.eu" in answer  # what there is to mirror
    assert len(rig.scenario.redis.keys("kco:run:*")) == runs_before
    assert mirror_makers(rig.west) == mirrors_before and "invoices" not in mirrors_before
    assert rig.topics(rig.east) == east_before and "kafka-chatops-canary-invoices" not in east_before
