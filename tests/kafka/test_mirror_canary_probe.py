"""The monitor's canary probe (``KafkaMirrorCanary.probe``, aiokafka) against real brokers: the
session sandbox is both source and target here, with the "remote" topic the source topic itself,
so what is proven is the clients' part (send, read from the kept positions, stop at the own record),
not MirrorMaker 2's (the mirror e2e tests prove that)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

import pytest

from bot.kafka.mirror_canary import KafkaMirrorCanary
from handlers.mirror_ports import MONITOR_MARKER, CanaryProbe
from handlers.ports import ClusterRef

if TYPE_CHECKING:  # a runtime import would stop pytest from rewriting the plugin's asserts
    from tests.fixtures.sandbox import SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(120)]


async def test_a_probe_sees_its_own_record_then_the_next_reads_on_from_where_it_stopped(sandbox: SandboxInfo) -> None:
    ref = ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster)
    canary = KafkaMirrorCanary()
    topic = f"canary-probe-{uuid.uuid4().hex[:8]}"
    assert await canary.create_topic(ref, sandbox.bootstrap_servers, topic)

    async def probe(marker: str, positions: dict[int, int]) -> CanaryProbe:
        return await canary.probe(ref, sandbox.bootstrap_servers, topic, ref, sandbox.bootstrap_servers, topic,
                            marker=marker, positions=positions, wait_s=5.0)

    before = time.time() * 1000
    first = await probe(f"{MONITOR_MARKER}1", {})
    assert len(first.arrivals) == 1, first  # its own record, read from the end before the send
    [arrival] = first.arrivals
    assert before <= arrival.sent_ms <= arrival.seen_ms <= time.time() * 1000
    assert first.positions == {0: 1}

    second = await probe(f"{MONITOR_MARKER}2", first.positions)
    assert len(second.arrivals) == 1 and second.positions == {0: 2}, second  # the first one is not read again

    missing = await canary.probe(ref, sandbox.bootstrap_servers, topic, ref, sandbox.bootstrap_servers,
                                 f"{topic}-absent", marker=f"{MONITOR_MARKER}3", positions={}, wait_s=1.0)
    assert missing.arrivals == () and missing.positions == {}  # no remote topic yet: nothing arrived
