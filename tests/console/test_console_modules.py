"""A console holds only what it uses (issue 17 §3: an idle bot within 100 MB resident): running, with
its monitors watching a cluster's pods and events, it has loaded neither the Slack front end (the
Slack SDKs, aiohttp), nor structlog (it configures no logging), nor the Kubernetes client's
generated core/apps/events APIs, whose modules load every model their methods name (26 MB of the
bot's idle RSS before bot.kube.resources replaced them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.fixtures.kube_api_stub import KubeApiHandler, kube_api_kubeconfig
from tests.slack.bot_server import PROJECT_ROOT

pytestmark = pytest.mark.timeout(90)

NOT_LOADED = ("slack_bolt", "slack_sdk", "aiohttp", "structlog", "kubernetes.client.api.core_v1_api",
              "kubernetes.client.api.apps_v1_api", "kubernetes.client.api.events_v1_api")
# The pod and event watches' lists: the calls that loaded the generated APIs before.
WATCH_LISTS = ("/api/v1/namespaces/kafka/pods", "/apis/events.k8s.io/v1/namespaces/kafka/events")
# The console, with its loaded modules written at exit (the bot's own entry point, unchanged).
CONSOLE = """
import atexit, json, sys
atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(sorted(sys.modules))))
from bot.cli import main
sys.exit(main(["console", "--json", "--user", "console:ana"]))
"""


class _Kubernetes(KubeApiHandler):
    """Every call answers 404 (the watches retry); the paths asked are kept."""

    paths: ClassVar[list[str]] = []  # each test gets its own subclass (the fixture)

    def do_GET(self) -> None:
        self.paths.append(self.path.partition("?")[0])
        self.send_not_found()


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    paths: list[str] = []
    handler = type("Recording", (_Kubernetes,), {"paths": paths})
    with kube_api_kubeconfig(handler, tmp_path / "kubeconfig") as path:
        yield path, paths


def test_a_watching_console_loads_no_slack_http_or_generated_kubernetes_apis(
    tmp_path: Path, redis_url: str, kube: tuple[Path, list[str]],
) -> None:
    kubeconfig, paths = kube
    config = tmp_path / "clusters.yaml"
    config.write_text("clusters:\n  prod:\n    namespace: kafka\n    approvers: [console:ana]\n")
    modules_file = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_", "KAFKA_CHATOPS_"))}
    env.update(REDIS_URL=redis_url, KUBECONFIG=str(kubeconfig), KAFKA_CHATOPS_CONFIG=str(config))
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        console = subprocess.Popen([sys.executable, "-c", CONSOLE, str(modules_file)], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=PROJECT_ROOT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not all(p in paths for p in WATCH_LISTS) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(p in paths for p in WATCH_LISTS), f"the watches did not list pods and events; asked: {paths}"
        assert console.stdin is not None
        console.stdin.close()  # the input ends: the console exits, writing its modules
        console.wait(timeout=30)
    finally:
        if console.poll() is None:
            console.kill()
    assert console.returncode == 0, stderr.read_text()[-3000:]
    loaded = set(json.loads(modules_file.read_text()))
    assert "kubernetes.client.api.custom_objects_api" in loaded  # the Kafka watch: the client is in use
    assert [name for name in NOT_LOADED if name in loaded] == []
