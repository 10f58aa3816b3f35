"""MirrorMaker 2 alerts end to end: two sandboxes, ``east`` (source) and ``west`` (target; the pair the
MirrorMaker 2 modules share, tests/fixtures/mirror_pair.py), a KafkaMirrorMaker2 created directly in west's
Kubernetes API (real MirrorMaker 2 in the sandbox) mirroring this module's own topic, and the real bot in the
console managing west.

- Lag: the source connector paused while records are produced on east: the mirror_lag alert is posted with
  the records behind; running again, it catches up and the alert resolves.
- Failure: ``sandbox fault mirror-task-fail`` makes the source task really FAIL: the mirror_failed alert is
  posted with the trace's first line and a Restart button; the fault cleared, the button's command (run as
  the console user, approved) restarts the task through Strimzi's annotation and the same message resolves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.alerts.harness import USER, alert_events, clusters_file, create_topic, posted, produce
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import free_port
from tests.fixtures.sandbox import SandboxInfo
from tests.sandbox.cluster_helpers import StrimziCluster
from tests.sandbox.test_mirrormaker2_twin import (
    PLURAL,
    SOURCE,
    all_running,
    connector,
    mirror_resource,
    wait_status,
)

pytestmark = pytest.mark.sandbox
MM2 = "dr"  # the twin test's name: wait_status and the helpers look for it
TOPIC = "alerts.eu"
# Only this module's topic and group: the other modules on the shared pair mirror theirs.
PATTERNS = {"topicsPattern": "alerts.*", "groupsPattern": "alerts-billing"}
LAGGING = 50


@pytest.fixture(scope="module")
def pair(mirror_clusters: tuple[SandboxInfo, SandboxInfo]) -> tuple[SandboxInfo, SandboxInfo]:
    return mirror_clusters


def set_source_state(west: StrimziCluster, pair: tuple[SandboxInfo, SandboxInfo], state: str) -> None:
    resource = mirror_resource(MM2, *pair, **PATTERNS)
    spec = resource["spec"]["mirrors"][0]
    spec["sourceConnector"] = {**spec["sourceConnector"], "state": state}
    west.patch(PLURAL, MM2, {"spec": {"mirrors": [spec]}})


def test_mirror_lag_and_a_failed_task_alert_and_the_restart_button_brings_it_back(
    pair: tuple[SandboxInfo, SandboxInfo], redis_url: str, tmp_path: Path,
) -> None:
    east, west_info = pair
    api = west_info.api_client()
    west = StrimziCluster(api, west_info.namespace, west_info.cluster)
    create_topic(east.bootstrap_servers, TOPIC, partitions=1, replication=1)
    west.custom.create_namespaced_custom_object("kafka.strimzi.io", "v1", west.namespace, PLURAL,
                                                mirror_resource(MM2, east, west_info, **PATTERNS))
    wait_status(west, lambda s: all_running(s, SOURCE, min_tasks=1), "the source connector RUNNING", timeout=150)
    config = clusters_file(tmp_path / "clusters.yaml", west_info, {"west": (
        "{health_poll: 5s, lag_poll: 30s, mirror_poll: 2s, update_interval: 1s, "
        f"mirror_lag: {{for: 0s, max_records: {LAGGING // 2}, max_seconds: null}}}}")})
    # The user the clusters file names approver (no requesters: approvers may start runs; four_eyes off).
    bot = BotProcess(user=USER, redis_url=redis_url, kubeconfig=west_info.kubeconfig, config_path=config,
                     log_dir=tmp_path, extra_env={"KAFKA_CHATOPS_HTTP_PORT": str(free_port()),
                                                  "KAFKA_CHATOPS_WATCH_TIMEOUT": "20"}).start()
    try:
        # -- lag: paused, records pile up on east --------------------------------------------------
        set_source_state(west, pair, "paused")
        # Its tasks too: Connect pauses them after the connector, and a task still running copies the records.
        wait_status(west, lambda s: (connector(s, SOURCE).get("connector") or {}).get("state") == "PAUSED"
                    and bool(connector(s, SOURCE).get("tasks"))
                    and all(t.get("state") == "PAUSED" for t in connector(s, SOURCE)["tasks"]),
                    "the source connector and its task PAUSED")
        assert alert_events(bot) == []  # a healthy, caught-up mirror alerts nothing
        produce(east.bootstrap_servers, TOPIC, LAGGING)
        lag = bot.expect(posted("mirror_lag", f"mirror/{MM2}"), timeout=60, what="the mirror lag alert")
        assert f"MirrorMaker 2 {MM2} is {LAGGING} records behind" in lag["text"], lag["text"]
        assert f"{TOPIC}-0 {LAGGING}" in lag["text"] and f"{SOURCE} is PAUSED" in lag["text"]
        set_source_state(west, pair, "running")
        bot.expect(lambda e: e.get("alert_id") == lag["alert_id"] and e.get("phase") == "resolved", timeout=90,
                   what="the lag alert resolved once the mirror caught up")

        # -- a task really FAILED ----------------------------------------------------------------
        wait_status(west, lambda s: all_running(s, SOURCE, min_tasks=1), "the source task RUNNING again")
        west_info.cli("fault", "mirror-task-fail", "--when", SOURCE)
        subject = f"mirror/{MM2}/{SOURCE}/task-0"
        alert = bot.expect(posted("mirror_failed", subject), timeout=90, what="the FAILED task alert")
        assert f"task 0 of {SOURCE} FAILED" in alert["text"]
        assert "org.apache.kafka.common.KafkaException: Failed to construct kafka consumer" in alert["text"]
        assert "\tat " not in alert["text"]  # the first line, not the stack
        (button,) = [b for b in alert["buttons"] if b["action"] == "command"]
        assert button["value"] == f"/kafka mirror-restart west {MM2} '{SOURCE}' --task 0"

        west_info.cli("fault", "mirror-task-fail", "--clear")  # fixed, but nothing restarts it by itself
        started = bot.command(button["value"])  # what the button runs, as the one who clicks it
        assert started["event"] == "reply", started
        run_id = started["run_id"]
        bot.expect(lambda e: (e.get("event") == "step_awaiting_approval" and e.get("run_id") == run_id
                              and e.get("step_id") == "restart"), timeout=60, what="the restart to ask approval")
        assert bot.command(f"approve {run_id} restart")["event"] == "reply"
        done = bot.expect(lambda e: e.get("event") == "run_finished" and e.get("run_id") == run_id, timeout=120,
                          what="the restart run to finish")
        assert done["final_state"] == "succeeded", done
        resolved = bot.expect(lambda e: e.get("alert_id") == alert["alert_id"] and e.get("phase") == "resolved",
                              timeout=60, what="the FAILED task alert resolved")
        assert "resolved" in resolved["text"]
        ours = alert_events(bot, alert["alert_id"])
        assert [e["event"] for e in ours].count("alert_posted") == 1
        assert {e["message_id"] for e in ours} == {alert["message_id"]}
        annotations: dict[str, Any] = west.get(PLURAL, MM2)["metadata"].get("annotations") or {}
        assert "strimzi.io/restart-connector-task" not in annotations
    finally:
        bot.stop()
        api.close()
