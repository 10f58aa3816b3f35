"""Stopping the Kubernetes watches ends their threads within moments, also when ``stop`` comes while
a list request still waits for the API server: the thread used to go on to open a watch stream that
nothing stopped, and read it until the stream's timeout. A daemon thread still reading when the
interpreter finalizes aborts the process if data reaches it then, so the console's exit waits for
the watch threads (``Monitors.stop``) and they must end."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from bot.monitors.kube_watch import ClusterWatches
from handlers.ports import ClusterRef
from tests.fixtures.kube_api_stub import KubeApiHandler, kube_api
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.timeout(30)

LIST_AFTER_S = 0.5


class _SlowListIdleWatch(KubeApiHandler):
    """A list is answered (empty) after half a second; a watch stream sends its headers and then
    nothing for a minute, as a quiet cluster's does."""

    def do_GET(self) -> None:
        if "watch=true" in self.path:
            self.start_stream()
            time.sleep(60)
            return
        time.sleep(LIST_AFTER_S)
        self.send_json({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": []})


@pytest.fixture
def api() -> Iterator[client.ApiClient]:
    with kube_api(_SlowListIdleWatch) as api_client:
        yield api_client


def watch_threads(cluster: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"kco-watch-{cluster}/") and t.is_alive()]


async def test_a_stop_during_the_lists_ends_the_watch_threads(api: client.ApiClient) -> None:
    """(A stop while the streams are idle already ended them: the client's Watch.stop shuts its socket.)"""
    cluster = "prod"
    watches = ClusterWatches(ClusterRef(name=cluster, namespace="kafka", kafka=cluster), api,
                             loop=asyncio.get_running_loop(), on_change=lambda: None, timeout_s=60)
    watches.start()
    await asyncio.sleep(0.1)  # each thread's list request is waiting for the server
    stopped_at = time.monotonic()
    watches.stop()
    await wait_for(lambda: not watch_threads(cluster), timeout=5, message="the watch threads to end")
    assert time.monotonic() - stopped_at < LIST_AFTER_S + 1.5
