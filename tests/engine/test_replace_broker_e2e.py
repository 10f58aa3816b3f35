"""replace-broker and scale against the real sandbox (Strimzi twin, real brokers), through bot
processes as a user starts them. The default sandbox is 3 dual-role nodes with RF 3 topics, so a
drain has nowhere to go and wiping a node's disk would touch the controller quorum: what runs here
is the planning against the real cluster (its layout, its node pools), the refusals that cluster
earns, and ``--keep-data`` run to the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.harness import APPROVER, REQUESTER, PodUidTracker, bot, run_id_of, write_clusters_file
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.sandbox import SandboxInfo

pytestmark = pytest.mark.sandbox


@pytest.fixture
def processes(tmp_path: Path):  # type: ignore[no-untyped-def]
    started: list[BotProcess] = []

    def start(process: BotProcess) -> BotProcess:
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


def test_replace_broker_refusals_and_keep_data_on_the_sandbox(
    sandbox: SandboxInfo, redis_url: str, tmp_path: Path, processes,  # type: ignore[no-untyped-def]
) -> None:
    """Refused, read from the real cluster: a dual-role node's disk, an unknown broker, scaling a
    dual-role pool. ``--keep-data`` restarts only broker 1's pod, once, and the run succeeds."""
    config = write_clusters_file(tmp_path / "clusters.yaml", sandbox)
    alice = processes(bot(REQUESTER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path))
    bob = processes(bot(APPROVER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path))
    c = sandbox.cluster
    controller = alice.command(f"replace-broker {c} 1")
    assert controller["event"] == "error" and controller["text"] == (
        f"Cannot plan a replacement of broker 1 of {c}: node 1 is also a KRaft controller: the controller quorum is "
        "static, and wiping a voter's disk can lose committed metadata. Use --keep-data (a new pod on the same "
        "disk), or replace a broker-only node."), controller
    unknown = alice.command(f"replace-broker {c} 7 --dry-run")
    assert unknown["event"] == "error" and "no broker 7 in this cluster; its brokers are 0, 1, 2" in unknown["text"]
    pool = alice.command(f"scale {c} dual-role 4")
    assert pool["event"] == "error" and "pool dual-role is dual-role (broker+controller)" in pool["text"], pool
    with PodUidTracker(sandbox) as pods:
        run_id = run_id_of(alice.command(f"replace-broker {c} 1 --keep-data"))
        bob.expect(lambda e: e.get("event") == "step_awaiting_approval" and e.get("run_id") == run_id
                   and e.get("step_id") == "restart-1", timeout=120, what="the restart step to ask")
        assert bob.command(f"approve {run_id} restart-1")["event"] == "reply"
        bob.expect(lambda e: e.get("event") == "step_awaiting_approval" and e.get("run_id") == run_id
                   and e.get("step_id") == "elect-leaders", timeout=240, what="broker 1 to be back")
        bob.command(f"approve {run_id} elect-leaders")
        done = alice.expect(lambda e: e.get("event") == "run_finished" and e.get("run_id") == run_id,
                            timeout=60, what="the run to finish")
        assert done["final_state"] == "succeeded", done
    assert {name: n for name, n in pods.restarts().items() if n} == {f"{c}-dual-role-1": 1}
