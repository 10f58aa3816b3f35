"""One bot process, two Kubernetes clusters: two 1-broker sandboxes, each with its own API server
and kubeconfig. The clusters file names prod-east (on KUBECONFIG's current context, the default) and
prod-west (its own `kubeconfig` and `context`). Each answers from its own cluster, a restart of
prod-west rolls west's broker only, and a broker crash in west is seen by west's watches alone.

The Kafka resources are named after their sandboxes (east, west): a bot with one Kubernetes API
would not find prod-west's Kafka at all."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engine.harness import REQUESTER, PodUidTracker
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.sandbox import SandboxInfo

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def east_west(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[tuple[SandboxInfo, SandboxInfo]]:
    east, west = sandbox_factory("east", brokers=1), sandbox_factory("west", brokers=1)
    yield east, west
    east.down()
    west.down()


def test_one_bot_operates_two_clusters_through_their_own_kubeconfigs(
    east_west: tuple[SandboxInfo, SandboxInfo], redis_url: str, tmp_path: Path,
) -> None:
    east, west = east_west
    assert east.kubeconfig != west.kubeconfig and east.api_url != west.api_url
    config = tmp_path / "clusters.yaml"
    config.write_text(
        "clusters:\n"
        "  prod-east:\n"
        f"    namespace: {east.namespace}\n"
        f"    kafka: {east.cluster}\n"
        f"    approvers: [{json.dumps(REQUESTER)}]\n"
        "    four_eyes: false\n"
        "  prod-west:\n"
        f"    namespace: {west.namespace}\n"
        f"    kafka: {west.cluster}\n"
        f"    kubeconfig: {west.kubeconfig}\n"
        f"    context: sandbox-{west.name}\n"
        f"    approvers: [{json.dumps(REQUESTER)}]\n"
        "    four_eyes: false\n"
    )
    alice = BotProcess(user=REQUESTER, redis_url=redis_url, kubeconfig=east.kubeconfig, config_path=config,
                       log_dir=tmp_path, extra_env={"KAFKA_CHATOPS_POLL_INTERVAL": "0.3"}).start()
    try:
        east_status, west_status = alice.command("status prod-east"), alice.command("status prod-west")
        assert east_status["event"] == "reply" and west_status["event"] == "reply", (east_status, west_status)
        east_pod, west_pod = f"{east.cluster}-dual-role-0", f"{west.cluster}-dual-role-0"
        assert east_status["text"].startswith("prod-east: Ready"), east_status
        assert west_status["text"].startswith("prod-west: Ready"), west_status
        assert east_pod in east_status["text"] and west_pod not in east_status["text"]
        assert west_pod in west_status["text"] and east_pod not in west_status["text"]

        with PodUidTracker(east) as east_pods, PodUidTracker(west) as west_pods:
            mark = len(alice.events)
            reply = alice.command("restart prod-west --brokers 0")
            assert reply["event"] == "reply", reply
            run_id, approved = reply["run_id"], set()
            while True:  # approve each step as it asks, until the run ends
                event = alice.expect(
                    lambda e: e.get("run_id") == run_id and e.get("step_id") not in approved and e.get("event") in (
                        "step_awaiting_approval", "run_finished", "step_paused"),
                    timeout=180, what="the next approval or the end of the run", since=mark)
                if event["event"] != "step_awaiting_approval":
                    break
                approved.add(event["step_id"])
                assert alice.command(f"approve {run_id} {event['step_id']}")["event"] == "reply"
            assert event["event"] == "run_finished" and event["final_state"] == "succeeded", event
        assert west_pods.restarts() == {west_pod: 1}
        assert not any(east_pods.restarts().values()), east_pods.restarts()

        # The watches: west's broker process dies (same pod, restartCount + 1): only west's pod watch
        # can tell, and the pod-crashing alert is prod-west's; prod-east, whose same-numbered broker
        # is fine, alerts about nothing.
        west.cli("kill-broker", "0", "--down-for", "20")
        crashing = alice.expect(lambda e: e.get("event") == "alert_posted" and e.get("condition") == "pod_crashing",
                                timeout=60, what="the pod-crashing alert")
        assert (crashing["cluster"], crashing["subject"]) == ("prod-west", west_pod), crashing
        assert not [e for e in alice.events if str(e.get("event", "")).startswith("alert")
                    and e.get("cluster") == "prod-east"]
    finally:
        alice.stop()
