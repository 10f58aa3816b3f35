"""Throttles left by hand on the session sandbox: the adapter's ``replication_throttles`` sees what
kafka-python's IncrementalAlterConfigs and ``kafka-configs.sh --entity-default`` set (a rate of a
broker's own, the cluster-wide default every broker inherits, a topic's throttled-replica list), and
the commands the unowned-throttles alert gives, run as written with Kafka's own ConfigCommand, clear
every one of them (``--delete-config`` of a key that is not set would fail the command)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from bot.kafka import KafkaAdminAdapter
from bot.sandbox.jars import libs_dir, require_java
from handlers.ports import ClusterRef
from runbooks.rules.unowned_throttles import (
    FOLLOWER_RATE,
    LEADER_RATE,
    LEADER_REPLICAS,
    ThrottlesSeen,
    unowned_throttles,
)

if TYPE_CHECKING:  # a runtime import would stop pytest from rewriting the plugin's asserts
    from tests.fixtures.sandbox import SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(180)]

REF = ClusterRef(name="test", namespace="kafka", kafka="test")
TOPIC = "unowned-throttles-test"
DEFAULT_RATE = str(1024 * 1024)
OWN_RATE = str(3 * 1024 * 1024)


def _config_command(sandbox: SandboxInfo, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash with ``kafka-configs.sh`` standing for Kafka's ConfigCommand of the
    sandbox's version (the class the script of that name runs)."""
    java = f"{require_java()} -Xmx128m -XX:TieredStopAtLevel=1 -cp '{libs_dir(sandbox.kafka_version)}/*'"
    prelude = f'kafka-configs.sh() {{ {java} kafka.admin.ConfigCommand "$@"; }}\nset -e\n'
    return subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, timeout=120, check=False)


def _set_by_hand(bootstrap: str) -> None:
    """What another tool leaves: a follower rate of broker 1's own and the leader list of a topic
    (``*``: every replica), with kafka-python's IncrementalAlterConfigs."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        if TOPIC not in admin.list_topics():
            admin.create_topics([NewTopic(TOPIC, 1, 1)])
        for resource in (ConfigResource(ConfigResourceType.BROKER, "1", {FOLLOWER_RATE: (AlterConfigOp.SET, OWN_RATE)}),
                         ConfigResource(ConfigResourceType.TOPIC, TOPIC, {LEADER_REPLICAS: (AlterConfigOp.SET, "*")})):
            result = admin.alter_configs([resource], raise_on_unknown=False, incremental=True)
            assert all(v == "OK" for answers in result.values() for v in answers.values()), result
    finally:
        admin.close()


def _drop_topic(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        if TOPIC in admin.list_topics():
            admin.delete_topics([TOPIC])
    finally:
        admin.close()


@pytest_asyncio.fixture
async def adapter(sandbox: SandboxInfo) -> AsyncIterator[KafkaAdminAdapter]:
    admin = KafkaAdminAdapter(request_timeout_ms=5000, call_deadline_s=15)
    try:
        yield admin
    finally:
        # Whatever the test got to: the sandbox is left without throttles for the next test.
        await admin.remove_replication_throttles(REF, sandbox.bootstrap_servers, [0, 1, 2], [])
        await asyncio.to_thread(_drop_topic, sandbox.bootstrap_servers)
        present = await admin.replication_throttles(REF, sandbox.bootstrap_servers)
        if present.default_rates:
            await asyncio.to_thread(_config_command, sandbox, (
                f"kafka-configs.sh --bootstrap-server {sandbox.bootstrap_servers} --entity-type brokers "
                f"--entity-default --alter --delete-config {','.join(present.default_rates)}"))
        await admin.close()


async def _throttles_until(admin: KafkaAdminAdapter, bootstrap: str, done: Callable[[ThrottlesSeen], bool],
                           within_s: float = 20.0) -> ThrottlesSeen:
    """The throttles, read until ``done(seen)``: a broker applies a dynamic config from the metadata
    log a moment after the controller accepted it."""
    deadline = time.monotonic() + within_s
    while True:
        present = await admin.replication_throttles(REF, bootstrap)
        seen = ThrottlesSeen(brokers=present.brokers, default_rates=present.default_rates, topics=present.topics)
        if done(seen) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.5)


async def test_throttles_left_by_hand_are_seen_and_the_alerts_commands_clear_them(
        sandbox: SandboxInfo, adapter: KafkaAdminAdapter) -> None:
    bootstrap = sandbox.bootstrap_servers
    await asyncio.to_thread(_set_by_hand, bootstrap)
    default = await asyncio.to_thread(_config_command, sandbox, (
        f"kafka-configs.sh --bootstrap-server {bootstrap} --entity-type brokers --entity-default --alter "
        f"--add-config {LEADER_RATE}={DEFAULT_RATE}"))
    assert default.returncode == 0, default.stderr

    expected_brokers = {0: {LEADER_RATE: DEFAULT_RATE}, 1: {LEADER_RATE: DEFAULT_RATE, FOLLOWER_RATE: OWN_RATE},
                        2: {LEADER_RATE: DEFAULT_RATE}}
    seen = await _throttles_until(adapter, bootstrap, lambda s: s.brokers == expected_brokers and TOPIC in s.topics)
    assert seen.brokers == expected_brokers
    assert seen.default_rates == {LEADER_RATE: DEFAULT_RATE}
    assert seen.topics == {TOPIC: {LEADER_REPLICAS: "*"}}

    found = unowned_throttles(seen, [], bootstrap)
    assert found is not None
    assert found.commands == (
        f"kafka-configs.sh --bootstrap-server {bootstrap} --entity-type brokers --entity-name 1 --alter "
        f"--delete-config {FOLLOWER_RATE}",
        f"kafka-configs.sh --bootstrap-server {bootstrap} --entity-type brokers --entity-default --alter "
        f"--delete-config {LEADER_RATE}",
        f"kafka-configs.sh --bootstrap-server {bootstrap} --entity-type topics --entity-name {TOPIC} --alter "
        f"--delete-config {LEADER_REPLICAS}",
    )
    cleared = await asyncio.to_thread(_config_command, sandbox, "\n".join(found.commands))
    assert cleared.returncode == 0, cleared.stderr

    after = await _throttles_until(adapter, bootstrap, lambda s: s.empty)
    assert after.empty, after
