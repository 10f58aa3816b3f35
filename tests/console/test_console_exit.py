"""The console ends cleanly at the end of its input: exit code 0 and nothing on stderr that looks
like a traceback, also when the monitors' first polls are still waiting for Kubernetes (they start
with the console, so a short piped session always ends during them)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.kube_api_stub import KubeApiHandler, kube_api_kubeconfig
from tests.slack.bot_server import PROJECT_ROOT

pytestmark = pytest.mark.timeout(300)

RUNS = 10
ANSWER_AFTER_S = 1.0


class _SlowKubernetes(KubeApiHandler):
    """Every call answers 404 after a second: the polls are in flight when the input ends."""

    def do_GET(self) -> None:
        time.sleep(ANSWER_AFTER_S)
        self.send_not_found()


@pytest.fixture
def slow_kubeconfig(tmp_path: Path) -> Iterator[Path]:
    with kube_api_kubeconfig(_SlowKubernetes, tmp_path / "kubeconfig") as path:
        yield path


def test_piped_sessions_end_without_a_traceback(tmp_path: Path, redis_url: str, slow_kubeconfig: Path) -> None:
    config = tmp_path / "clusters.yaml"
    config.write_text("clusters:\n  prod:\n    namespace: kafka\n    approvers: [console:ana]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_", "KAFKA_CHATOPS_"))}
    env.update(REDIS_URL=redis_url, KUBECONFIG=str(slow_kubeconfig), KAFKA_CHATOPS_CONFIG=str(config))
    for attempt in range(RUNS):
        proc = subprocess.run([sys.executable, "-m", "bot", "console", "--user", "console:ana"],
                              input="help\nclusters\n", env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, f"run {attempt}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr and "CancelledError" not in proc.stderr, (
            f"run {attempt}:\n{proc.stderr[-3000:]}")
        assert "prod" in proc.stdout, f"run {attempt}: no answer to `clusters`:\n{proc.stdout}"
