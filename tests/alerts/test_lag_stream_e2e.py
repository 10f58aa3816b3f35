"""Streamed lag monitoring end to end (issue #17 §2, §4): bots as console subprocesses on the
session sandbox and a real redis-server, never patched.

- Failover: two replicas; the one holding the monitor lease streams ``__consumer_offsets`` and
  posts the alert of a lagging group; it is SIGKILLed; the other takes the lease and the stream
  over (``/metrics`` says it reads the streamed offsets), posts a second group's new alert once,
  edits the first, and neither alert is posted twice.
"""

from __future__ import annotations

import secrets
import time
import urllib.request
from pathlib import Path

import pytest

from tests.alerts.harness import alert_events, bot, clusters_file, commit, create_topic, drain, posted, produce
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import free_port
from tests.fixtures.sandbox import SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(300)]

CLUSTER = "lagstream"
RULE = ("{health_poll: 1s, lag_poll: 5s, update_interval: 1s, consumer_lag: {for: 0s, max_lag: 10, "
        "max_lag_seconds: 1d, growth: {enabled: false}, include_groups: 'failover-.*'}}")


def streamed(port: int) -> bool:
    """The replica's /metrics says it reads the cluster's committed offsets from the stream."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return False
    return f'kafka_chatops_lag_offsets_streamed{{cluster="{CLUSTER}"}} 1' in text


def wait_streamed(process: BotProcess, port: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not streamed(port):
        assert time.monotonic() < deadline, f"{process.user} never read streamed offsets"
        drain(process, 0.5)


def test_failover_moves_the_stream_and_loses_or_repeats_no_alert(
    sandbox: SandboxInfo, redis_url: str, tmp_path: Path,
) -> None:
    topic = f"failover-{secrets.token_hex(3)}"
    first, second = f"failover-{secrets.token_hex(3)}", f"failover-{secrets.token_hex(3)}"
    config = clusters_file(tmp_path / "clusters.yaml", sandbox, {CLUSTER: RULE})
    create_topic(sandbox.bootstrap_servers, topic)
    produce(sandbox.bootstrap_servers, topic, 50)
    commit(sandbox.bootstrap_servers, first, topic, 0)  # 50 behind: over max_lag
    commit(sandbox.bootstrap_servers, second, topic, 50)  # caught up, for now
    ports = {"a": free_port(), "b": free_port()}
    bots = {name: bot(name, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path,
                      http_port=port).start() for name, port in ports.items()}
    try:
        is_first = posted("consumer_lag", f"group:{first}")
        deadline = time.monotonic() + 60
        while not any(is_first(e) for p in bots.values() for e in p.events):
            assert time.monotonic() < deadline, "no replica posted the first alert"
            for process in bots.values():
                drain(process, 0.5)
        holder_name = next(n for n, p in bots.items() if any(is_first(e) for e in p.events))
        holder, survivor_name = bots[holder_name], "b" if holder_name == "a" else "a"
        survivor = bots[survivor_name]
        wait_streamed(holder, ports[holder_name], 60)
        assert not streamed(ports[survivor_name])  # one replica streams a cluster
        first_post = next(e for e in holder.events if is_first(e))

        holder.kill()
        wait_streamed(survivor, ports[survivor_name], 60)  # the lease lapses (3 s), then a replay
        produce(sandbox.bootstrap_servers, topic, 50)  # both groups 50 more behind: a new alert, an edit
        survivor.expect(posted("consumer_lag", f"group:{second}"), timeout=30, what="the second group's alert")
        survivor.expect(lambda e: e.get("event") == "alert_updated" and e.get("alert_id") == first_post["alert_id"],
                        timeout=30, what="the first alert edited by the survivor")
        drain(survivor, 3)
        posts = [e for p in bots.values() for e in alert_events(p, event="alert_posted")
                 if e.get("subject") in (f"group:{first}", f"group:{second}")]
        assert sorted(e["subject"] for e in posts) == sorted([f"group:{first}", f"group:{second}"]), posts
    finally:
        for process in bots.values():
            process.stop()
