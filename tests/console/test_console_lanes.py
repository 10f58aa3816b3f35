"""The console answers a command that needs no cluster, or another cluster, at once, even while a
command on a cluster that does not answer is still waiting for it; commands on one cluster keep
their order. Real Redis and engine (``fake_runtime``), a fake cluster at the ports whose one
cluster answers only after a while."""

from __future__ import annotations

import asyncio
import io
import time

import pytest

from bot.console.console import Console
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef
from runbooks.rules.health import ClusterSnapshot
from tests.fakes.cluster import FakeCluster, managed
from tests.fixtures.fake_runtime import close_runtime, fake_runtime

SLOW_S = 3.0

pytestmark = pytest.mark.timeout(30)


class OneSlowCluster(FakeCluster):
    """Cluster "dead" has a Kafka that accepts connections and never answers: each of its admin
    calls takes SLOW_S (the client's timeout). "prod" answers at once."""

    async def snapshot(self, cluster: ClusterRef, bootstrap_servers: str) -> ClusterSnapshot:
        if cluster.name == "dead":
            await asyncio.sleep(SLOW_S)
        return await super().snapshot(cluster, bootstrap_servers)


class TimedOutput(io.StringIO):
    """What the console prints, each line with the time it was printed."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.lines += [(time.monotonic(), line) for line in text.splitlines() if line]
        return super().write(text)

    def first(self, prefix: str) -> tuple[float, int]:
        """When the first line starting with ``prefix`` was printed, and its position."""
        for index, (at, line) in enumerate(self.lines):
            if line.startswith(prefix):
                return at, index
        raise AssertionError(f"no line starting with {prefix!r} in {[line for _, line in self.lines]}")


async def test_help_and_another_cluster_do_not_wait_for_a_cluster_that_does_not_answer(redis_url: str) -> None:
    """`status dead`, then `help`, `status prod`, `status dead` again, piped in at once: help and
    prod's status print within 1 s; dead's two statuses print after SLOW_S, in the order typed."""
    clusters: dict[str, ManagedCluster] = {"dead": managed("dead"), "prod": managed("prod")}
    runtime = await fake_runtime(redis_url, clusters, OneSlowCluster())
    out = TimedOutput()
    console = Console(runtime, user="console:test", json_mode=False, out=out)
    started = time.monotonic()
    try:
        await console.run(io.StringIO("status dead\nhelp\nstatus prod\nclusters\nstatus dead\n"))
    finally:
        await close_runtime(runtime)
    help_at, _ = out.first("/kafka operates")
    prod_at, _ = out.first("prod: Ready")
    clusters_at, _ = out.first("Managed clusters:")
    assert max(help_at, prod_at, clusters_at) - started < 1.0, [(round(t - started, 2), line) for t, line in out.lines]
    dead = [(at, line) for at, line in out.lines if line.startswith("dead: Ready")]
    assert len(dead) == 2 and dead[0][0] - started >= SLOW_S, dead  # the input ended; both were still answered
