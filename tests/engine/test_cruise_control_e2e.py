"""``scale <c> brokers 0 --engine cruise-control`` on a sandbox with Cruise Control's twin and one
broker-only node (broker 3), through bot processes as a user starts them: the run creates its own
KafkaRebalance (remove-brokers [3], never auto-approved), the approver approves its proposal, the
twin moves the replicas on the real brokers, and broker 3 is empty before the pool shrinks; the
pool then loses the node without Strimzi reverting it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.harness import APPROVER, REQUESTER, bot, run_id_of, write_clusters_file
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.sandbox import SandboxInfo, start_sandbox
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import StrimziCluster, produce, with_admin

pytestmark = pytest.mark.sandbox

NAME = "ccscale"
TOPIC = "payload"


@pytest.fixture(scope="module")
def sbx(sandbox_home: Path) -> Iterator[SandboxInfo]:
    info = start_sandbox(NAME, brokers=3, extra_args=("--broker-only", "1", "--cruise-control"))
    try:
        yield info
    finally:
        info.down()  # free the cores for the next module


def replicas_on(bootstrap: str, broker: int) -> list[str]:
    topics = with_admin(bootstrap, lambda a: a.describe_topics())
    return [f"{t['name']}-{p['partition_index']}" for t in topics for p in t["partitions"]
            if broker in p["replica_nodes"]]


def test_scale_down_through_cruise_control_empties_broker_3_before_the_pool_shrinks(
    sbx: SandboxInfo, redis_url: str, tmp_path: Path,
) -> None:
    api = sbx.api_client()
    cluster = StrimziCluster(api, sbx.namespace, sbx.cluster)
    processes: list[BotProcess] = []
    try:
        cluster.create_topic(TOPIC, partitions=4, replicas=2)
        cluster.wait_topic_ready(TOPIC)
        boot = cluster.bootstrap()
        wait_until(lambda: replicas_on(boot, 3), timeout=30, interval=0.5, message="replicas on broker 3")
        for partition in range(4):
            produce(boot, TOPIC, [bytes(1000)] * 200, partition=partition)
        config = write_clusters_file(tmp_path / "clusters.yaml", sbx)
        alice = bot(REQUESTER, redis_url=redis_url, sandbox=sbx, config=config, log_dir=tmp_path)
        bob = bot(APPROVER, redis_url=redis_url, sandbox=sbx, config=config, log_dir=tmp_path)
        processes += [alice.start(), bob.start()]

        run_id = run_id_of(alice.command(f"scale {sbx.cluster} brokers 0 --engine cruise-control"))
        name = f"{sbx.cluster}-kco-{run_id}-drain"
        bob.expect(lambda e: e.get("event") == "step_awaiting_approval" and e.get("run_id") == run_id
                   and e.get("step_id") == "drain-rebalance", timeout=180, what="the proposal to ask for approval")
        proposal = cluster.get("kafkarebalances", name)
        assert proposal["metadata"]["labels"] == {"strimzi.io/cluster": sbx.cluster, "kafka-chatops.io/run": run_id}
        assert "strimzi.io/rebalance-auto-approval" not in (proposal["metadata"].get("annotations") or {})
        assert proposal["spec"] == {"mode": "remove-brokers", "brokers": [3]}
        assert proposal["status"]["optimizationResult"]["numReplicaMovements"] == len(replicas_on(boot, 3))
        assert replicas_on(boot, 3), "nothing moves before the approval"
        assert bob.command(f"approve {run_id} drain-rebalance")["event"] == "reply"

        bob.expect(lambda e: e.get("event") == "step_awaiting_approval" and e.get("run_id") == run_id
                   and e.get("step_id") == "scale-pool", timeout=240, what="the drain to finish")
        assert replicas_on(boot, 3) == [], "broker 3 is empty before the pool shrinks"
        assert cluster.get("kafkanodepools", "brokers")["spec"]["replicas"] == 1  # not patched yet
        conditions = cluster.get("kafkarebalances", name)["status"]["conditions"]
        assert [c["type"] for c in conditions if c.get("status") == "True"] == ["Ready"]
        assert bob.command(f"approve {run_id} scale-pool")["event"] == "reply"

        done = alice.expect(lambda e: e.get("event") == "run_finished" and e.get("run_id") == run_id,
                            timeout=240, what="the run to finish")
        assert done["final_state"] == "succeeded", done
        assert cluster.get("kafkanodepools", "brokers")["status"]["nodeIds"] == []
        assert not [c for c in cluster.conditions("Warning") if c.get("reason") == "ScaleDownPreventionCheck"]
        assert f"{sbx.cluster}-brokers-3" not in cluster.pods()
    finally:
        for process in processes:
            process.stop()
        api.close()
