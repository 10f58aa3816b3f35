"""Fixtures for the sandbox tests: the Kubernetes API emulator served from a background thread.

The ``kubernetes`` client is synchronous, so the emulator gets its own thread and event loop; the
test thread only talks to it over HTTP (or through ``RunningEmulator.call``), never touching the
store directly, which belongs to the emulator's loop.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from kubernetes import client, config

from bot.sandbox.kube.kubeconfig import write_kubeconfig
from bot.sandbox.kube.pod_logs import PodLogSource
from bot.sandbox.kube.server import create_app, start_server
from bot.sandbox.kube.store import ObjectStore
from bot.sandbox.kube.watch_stream import WatchSettings

_Result = TypeVar("_Result")


class RunningEmulator:
    """An ObjectStore served over HTTP from a daemon thread; ``stop()`` ends thread and server."""

    def __init__(self, *, history_size: int = 1000, watch_settings: WatchSettings | None = None,
                 pod_logs: PodLogSource | None = None) -> None:
        self.store = ObjectStore(history_size=history_size)
        self._watch_settings = watch_settings
        self._pod_logs = pod_logs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kube-emulator", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> RunningEmulator:
        self._thread.start()
        app = create_app(self.store, watch_settings=self._watch_settings, pod_logs=self._pod_logs)
        self._runner, self.url = self._run(start_server(self.store, app=app))
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def call(self, function: Callable[[], _Result]) -> _Result:
        """Run ``function`` on the emulator's loop (the only place the store may be used)."""

        async def run() -> _Result:
            return function()

        return self._run(run())

    def kubeconfig(self, directory: Path, *, namespace: str = "default") -> Path:
        return write_kubeconfig(directory / "kubeconfig", self.url, namespace=namespace, context_name="sandbox")

    def api_client(self, directory: Path, *, namespace: str = "default") -> client.ApiClient:
        """An ApiClient configured the way the bot configures one: from a kubeconfig file."""
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(self.kubeconfig(directory, namespace=namespace)),
            client_configuration=configuration,
        )
        return client.ApiClient(configuration)

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)


@pytest.fixture(scope="module")
def kube_emulator() -> Iterator[RunningEmulator]:
    emulator = RunningEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def kube_api(kube_emulator: RunningEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    api_client = kube_emulator.api_client(tmp_path_factory.mktemp("kube"))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture(scope="module")
def custom(kube_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


@pytest.fixture(scope="module")
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


@pytest.fixture
def namespace() -> str:
    """A fresh namespace per test: the emulator needs none created, and tests stay apart."""
    return f"test-{uuid.uuid4().hex[:8]}"
