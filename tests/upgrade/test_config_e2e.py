"""The rolling config update end to end, under traffic: console bot processes, a real Redis, a 3-broker
Kafka 4.3.1 sandbox of this module's own (torn down at its end). One change Kafka can only take at
start-up (a roll the run follows broker by broker) and one it applies live (no restart at all)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from tests.engine.harness import PodUidTracker, read_run
from tests.fixtures.sandbox import SandboxInfo
from tests.sandbox.cluster_helpers import StrimziCluster, with_admin
from tests.upgrade.scenario import PARTITIONS, TOPIC, console_bots, healthy, make_topic, run_with_approvals
from tests.upgrade.traffic import Traffic

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def cfg_sandbox(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[tuple[SandboxInfo, StrimziCluster]]:
    info = sandbox_factory("cfg-e2e", kafka_version="4.3.1", brokers=3)
    try:
        yield info, make_topic(info)
    finally:
        info.down()


def _broker_value(sandbox: SandboxInfo, key: str) -> set[str]:
    def read(admin: KafkaAdminClient) -> set[str]:
        values = set()
        for broker in range(sandbox.brokers):
            described = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(broker), [key])],
                                               config_filter="all")
            values.add(described["broker"][str(broker)][key]["value"])
        return values

    return set(with_admin(sandbox.bootstrap_servers, read))


def test_config_change_that_needs_a_restart_rolls_each_broker_once_under_traffic(
    cfg_sandbox: tuple[SandboxInfo, StrimziCluster], redis_url: str, tmp_path: Path,
) -> None:
    """auto.create.topics.enable (read at start-up only): approved once with the diff, the operator's roll
    followed broker by broker, each broker restarted once, the value verified on every broker, and the
    traffic loses nothing."""
    sandbox, cluster = cfg_sandbox
    names = {f"{sandbox.cluster}-dual-role-{n}": 1 for n in range(3)}
    with console_bots(sandbox, redis_url, tmp_path) as bots, PodUidTracker(sandbox) as pods, \
            Traffic(sandbox.bootstrap_servers, TOPIC, partitions=PARTITIONS) as traffic:
        run_id, last, _ = run_with_approvals(bots, f"config {sandbox.cluster} set auto.create.topics.enable=true")
        time.sleep(1)
    assert last["final_state"] == "succeeded", read_run(redis_url, run_id).get("pause_reason")
    traffic.report().assert_exactly_once()
    assert pods.restarts() == names
    assert cluster.kafka()["spec"]["kafka"]["config"]["auto.create.topics.enable"] is True
    assert _broker_value(sandbox, "auto.create.topics.enable") == {"true"}
    approvals = [e for e in bots.events if e["event"] == "step_awaiting_approval"]
    assert [e["step_id"] for e in approvals] == ["patch-config"]
    run = read_run(redis_url, run_id)
    assert "auto.create.topics.enable: (not set) -> true (needs a restart of every broker; brokers run false)" in \
        run["steps"][1]["spec"]["summary"], "the approver sees the diff against the Kafka resource"
    follow = [s for s in run["steps"] if s["spec"]["args"]["kind"] == "follow-roll"]
    assert sorted(s["spec"]["id"] for s in follow) == ["roll-0", "roll-1", "roll-2"]
    assert all(s["state"] == "done" and "restarted (new pod" in s["detail"] for s in follow)
    assert "(brokers 0, 1, 2 restarted)" in run["steps"][-1]["detail"]
    assert healthy(sandbox)


def test_dynamic_config_change_applies_without_any_restart_under_traffic(
    cfg_sandbox: tuple[SandboxInfo, StrimziCluster], redis_url: str, tmp_path: Path,
) -> None:
    """log.retention.ms (dynamic in Kafka): one approved patch, applied live by the operator, reported as
    applied without a restart, no pod restarted, the value on every broker, no record lost."""
    sandbox, cluster = cfg_sandbox
    with console_bots(sandbox, redis_url, tmp_path) as bots, PodUidTracker(sandbox) as pods, \
            Traffic(sandbox.bootstrap_servers, TOPIC, partitions=PARTITIONS) as traffic:
        run_id, last, _ = run_with_approvals(bots, f"config {sandbox.cluster} set log.retention.ms=86400000")
        time.sleep(1)
    assert last["final_state"] == "succeeded", read_run(redis_url, run_id).get("pause_reason")
    traffic.report().assert_exactly_once()
    assert not any(pods.restarts().values()), pods.restarts()
    assert _broker_value(sandbox, "log.retention.ms") == {"86400000"}
    run = read_run(redis_url, run_id)
    assert [s["spec"]["id"] for s in run["steps"]] == ["preflight", "patch-config", "verify"]
    assert "applied without a restart" in run["steps"][1]["detail"]
    assert "applied without a restart" in run["steps"][-1]["detail"]
    assert cluster.kafka()["spec"]["kafka"]["config"]["log.retention.ms"] == 86400000
