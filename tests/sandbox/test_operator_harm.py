"""A bad broker config on the twin, as the bot meets one: refused before a roll, or a crash loop.

On the session sandbox (3 dual-role nodes, Kafka 4.3.1), through the Kubernetes API and Kafka's
protocol only. Each test leaves the sandbox Ready with no fault in force.

- An invalid ``spec.kafka.config`` value is judged by Kafka's own classes: NotReady with Kafka's
  message in Strimzi's frame, no pod restarted, nothing applied live; removing it makes it Ready.
- ``sandbox fault start-failure --when KEY=VALUE``: a change that passes the config check but keeps
  a broker from starting. The first rolled broker crash-loops, the roll stops there, and patching
  the value back rolls that broker with the fixed config until every broker is Ready.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import StrimziCluster, pod_ready, with_admin

pytestmark = pytest.mark.sandbox

RESTART_ONLY_KEY = "auto.create.topics.enable"  # not dynamically updatable: a change rolls every broker


@pytest.fixture
def cluster(sandbox: SandboxInfo) -> Iterator[StrimziCluster]:
    api = sandbox.api_client()
    try:
        yield StrimziCluster(api, sandbox.namespace, sandbox.cluster)
    finally:
        api.close()


@pytest.fixture
def no_fault_left(sandbox: SandboxInfo) -> Iterator[None]:
    try:
        yield
    finally:
        sandbox.cli("fault", "start-failure", "--clear")


def broker_config(bootstrap: str, broker: int, key: str) -> dict[str, Any]:
    res = [ConfigResource(ConfigResourceType.BROKER, str(broker), [key])]
    entry: dict[str, Any] = with_admin(bootstrap, lambda a: a.describe_configs(res, config_filter="all"))
    return dict(entry["broker"][str(broker)][key])


def not_ready(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "NotReady")


def kafka_container(cluster: StrimziCluster, pod: str) -> Any:
    return cluster.pods()[pod].status.container_statuses[0]


def test_invalid_config_value_is_not_ready_with_kafkas_message_and_rolls_nothing(
        cluster: StrimziCluster, sandbox: SandboxInfo) -> None:
    """ratio=5 (Kafka: at most 1): NotReady InvalidResourceException in Kafka's words; no pod or value changes."""
    uids = cluster.pod_uids()
    pids = {n["id"]: n["pid"] for n in sandbox.status()["nodes"]}
    boot = cluster.bootstrap()
    generation = cluster.patch_kafka({"spec": {"kafka": {"config": {"log.cleaner.min.cleanable.ratio": 5}}}})
    try:
        status = cluster.wait_reconciled(generation, ready=False, timeout=120)
        failure = not_ready(status)
        assert failure["reason"] == "InvalidResourceException"
        assert failure["message"] == (
            f"Kafka {sandbox.namespace}/{sandbox.cluster} has invalid spec.kafka.config: Invalid value 5.0 for "
            "configuration log.cleaner.min.cleanable.ratio: Value must be no more than 1")
        time.sleep(4)  # another periodic reconciliation: still nothing rolls
        assert cluster.pod_uids() == uids, "an invalid config must roll nothing"
        assert {n["id"]: n["pid"] for n in sandbox.status()["nodes"]} == pids
        for broker in range(3):  # a dynamic key: not applied live either
            assert broker_config(boot, broker, "log.cleaner.min.cleanable.ratio")["value"] == "0.5"
        assert not_ready(cluster.kafka()["status"])["reason"] == "InvalidResourceException"
    finally:
        generation = cluster.patch_kafka({"spec": {"kafka": {"config": {"log.cleaner.min.cleanable.ratio": None}}}})
    status = cluster.wait_reconciled(generation, timeout=120)
    assert [c["type"] for c in status["conditions"]] == ["Ready"]
    assert cluster.pod_uids() == uids


def test_valid_config_value_still_applies_after_the_check(cluster: StrimziCluster) -> None:
    """ratio=0.7 passes Kafka's check and is applied live on every broker, no restart."""
    uids = cluster.pod_uids()
    generation = cluster.patch_kafka({"spec": {"kafka": {"config": {"log.cleaner.min.cleanable.ratio": 0.7}}}})
    cluster.wait_reconciled(generation, timeout=120)
    boot = cluster.bootstrap()
    assert [broker_config(boot, b, "log.cleaner.min.cleanable.ratio")["value"] for b in range(3)] == ["0.7"] * 3
    generation = cluster.patch_kafka({"spec": {"kafka": {"config": {"log.cleaner.min.cleanable.ratio": None}}}})
    cluster.wait_reconciled(generation, timeout=120)
    assert cluster.pod_uids() == uids


def test_fault_command_refuses_bad_input_and_lists_what_is_in_force(sandbox: SandboxInfo, no_fault_left: None) -> None:
    """--when must be KEY=VALUE; --json and status --json show the faults in force; --clear removes them."""
    for bad, expected in (("auto.create.topics.enable", "is not KEY=VALUE"), ("=true", "is not KEY=VALUE"),
                          ("a key=1", "is not a broker config key")):
        proc = sandbox.cli("fault", "start-failure", "--when", bad, check=False)
        assert proc.returncode == 1 and proc.stderr.startswith("error: --when") and expected in proc.stderr
    proc = sandbox.cli("fault", "start-failure", check=False)
    assert proc.returncode == 2 and "one of the arguments --when --clear is required" in proc.stderr
    out = json.loads(sandbox.cli("fault", "start-failure", "--when", "x.y=a=b", "--json").stdout)
    assert out == {"faults": [{"kind": "start-failure", "key": "x.y", "value": "a=b"}]}
    assert sandbox.status()["faults"] == out["faults"]
    assert "fault: start-failure when x.y=a=b" in sandbox.cli("status").stdout
    assert sandbox.cli("fault", "start-failure", "--clear").stdout.strip() == "cleared 1 start-failure fault(s)"
    assert sandbox.status()["faults"] == []


def test_start_failure_crash_loops_the_first_rolled_broker_and_patching_back_recovers(
        cluster: StrimziCluster, sandbox: SandboxInfo, no_fault_left: None) -> None:
    """Restart-only key set with the fault in force: one broker crash-loops, the roll stops; undo -> Ready."""
    boot = cluster.bootstrap()
    assert broker_config(boot, 0, RESTART_ONLY_KEY)["read_only"] is True, "the key must need a restart"
    uids = cluster.pod_uids()
    sandbox.cli("fault", "start-failure", "--when", f"{RESTART_ONLY_KEY}=true")
    started = time.monotonic()
    generation = cluster.patch_kafka({"spec": {"kafka": {"config": {RESTART_ONLY_KEY: True}}}})

    def crash_looping_pod() -> str | None:
        for name, pod in cluster.pods().items():
            c = pod.status.container_statuses[0]
            if pod.metadata.uid != uids[name] and c.state.waiting is not None \
                    and c.state.waiting.reason == "CrashLoopBackOff" and c.restart_count >= 1:
                return str(name)
        return None

    crashed = wait_until(crash_looping_pod, timeout=90, interval=0.2, message="a rolled pod in CrashLoopBackOff")
    seconds_to_crash_loop = time.monotonic() - started
    container = kafka_container(cluster, crashed)
    assert not pod_ready(cluster.pods()[crashed]) and not container.ready
    assert container.last_state.terminated.exit_code == 1, "Kafka itself gave up during start-up"
    node = next(n for n in sandbox.status()["nodes"] if n["pod"] == crashed)
    assert node["injected_fault"] == {"kind": "start-failure", "key": RESTART_ONLY_KEY, "value": "true"}

    status = cluster.wait_reconciled(generation, ready=False, timeout=120)
    failure = not_ready(status)
    assert failure["reason"] == "FatalProblem"
    assert failure["message"] in (f"Error while waiting for restarted pod {crashed} to become ready",
                                  f"Pod {crashed} is unschedulable or is not starting")
    wait_until(lambda: kafka_container(cluster, crashed).restart_count >= 3, timeout=60, interval=0.5,
               message="the restart count keeps growing")
    time.sleep(7)  # two more periodic reconciliations (3 s apart): they must not roll anything either
    others = {name: uid for name, uid in uids.items() if name != crashed}
    assert {name: uid for name, uid in cluster.pod_uids().items() if name != crashed} == others, \
        "the roll must stop at the crash-looping broker"
    assert all(pod_ready(cluster.pods()[name]) for name in others)

    generation = cluster.patch_kafka({"spec": {"kafka": {"config": {RESTART_ONLY_KEY: None}}}})
    cluster.wait_reconciled(generation, timeout=180)
    pods = cluster.pods()
    assert all(pod_ready(p) for p in pods.values()), "every broker Ready again"
    assert {name: pods[name].metadata.uid for name in others} == others, "only the broken broker was rolled"
    assert broker_config(cluster.bootstrap(), int(crashed.rsplit("-", 1)[1]), RESTART_ONLY_KEY)["value"] == "false"
    print(f"crash loop visible {seconds_to_crash_loop:.1f} s after the patch")
