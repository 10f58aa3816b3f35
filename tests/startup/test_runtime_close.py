"""Closing the runtime leaves no thread of it behind: the Kubernetes gateway's worker threads end
with it (they used to outlive it, so a front end that restarts its runtime leaked a pool each time)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bot.app import build_runtime
from bot.config.settings import Settings
from bot.kube.errors import KubeError
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef
from runbooks.engine.models import ApprovalPolicy
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.timeout(60)

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: nobody, user: {}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]
current-context: nowhere
"""


def kube_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kco-kube") and t.is_alive()]


async def test_closing_the_runtime_ends_the_kubernetes_gateway_threads(redis_url: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    settings = Settings(redis_url=redis_url, kubeconfig=str(kubeconfig), kafka_chatops_monitors=False)
    ref = ClusterRef(name="prod", namespace="kafka", kafka="prod")
    clusters = {"prod": ManagedCluster(ref=ref, policy=ApprovalPolicy())}
    runtime = await build_runtime(settings, clusters=clusters)
    assert runtime.gateway is not None
    with pytest.raises(KubeError):  # nothing listens on port 9: the call fails, but ran in a gateway thread
        await runtime.gateway.kafka_status(ref)
    assert kube_threads(), "the call should have started a gateway thread"
    await runtime.close()
    wait_until(lambda: not kube_threads(), timeout=5, message="the gateway's threads to end")
