"""The bot's small HTTP server: ``/healthz`` (the process answers), ``/readyz`` (Redis answers, the
monitors run, and the front end's checks pass: Slack connected, see ``bot.observability.readiness``)
and ``/metrics`` (Prometheus text: see ``bot.observability.metrics``).

Kept apart from Slack's ``/slack/events`` server on purpose: probes and scrapes must work in Socket
Mode too, and a scrape must never share a port (or a queue) with Slack's 3-second acks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from bot.config.settings import ConfigError
from bot.monitors.scheduler import Monitors
from bot.observability.metrics import (
    CONTENT_TYPE,
    Exposition,
    add_alerts,
    add_runs,
    checked_lag_document,
    lag_exposition,
)
from bot.observability.readiness import ReadinessCheck
from bot.store.alert_state import RedisAlertStore, RedisLagReports
from handlers.clusters import ManagedCluster
from handlers.ports import RunRepository

log = logging.getLogger(__name__)

RECENT_RUNS = 50  # finished runs counted in kafka_chatops_runs (the index keeps more)


class HttpServer:
    def __init__(
        self, *, clusters: Mapping[str, ManagedCluster], redis: aioredis.Redis, runs: RunRepository,
        alerts: RedisAlertStore, reports: RedisLagReports, monitors: Monitors | None, host: str = "0.0.0.0",
        port: int = 8000,
    ) -> None:
        self._clusters = dict(clusters)
        self._redis = redis
        self._runs = runs
        self._alerts = alerts
        self._reports = reports
        self._monitors = monitors
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._checks: list[ReadinessCheck] = []
        self.port: int | None = None

    def add_check(self, check: ReadinessCheck) -> None:
        """One more thing ``/readyz`` waits for (a front end's transport); added before ``start``, so
        the process is never reported ready before it is."""
        self._checks.append(check)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:  # the port is taken, or the host is no address of this machine
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(
                f"KAFKA_CHATOPS_HTTP_HOST/KAFKA_CHATOPS_HTTP_PORT {self._host}:{self._port}: cannot serve /healthz, "
                f"/readyz and /metrics there ({exc.strerror or exc}): give an address of this machine and a free "
                "port (0: any), or unset KAFKA_CHATOPS_HTTP_PORT for no server") from None
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("health and metrics on http://%s:%s (/healthz, /readyz, /metrics)", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        problems = []
        try:
            await asyncio.wait_for(self._redis.ping(), timeout=2)
        except Exception as exc:
            problems.append(f"redis: {type(exc).__name__}")
        if self._monitors is not None and (self._monitors.scheduler is None or not self._monitors.scheduler.running):
            problems.append("monitors: not running")
        for check in self._checks:
            try:
                problem = await asyncio.wait_for(check.problem(), timeout=2)
            except Exception as exc:
                problem = f"{type(check).__name__}: {type(exc).__name__}"
            if problem is not None:
                problems.append(problem)
        if problems:
            return web.Response(status=503, text="not ready: " + "; ".join(problems) + "\n")
        return web.Response(text="ready\n")

    def _leads(self, cluster: str) -> bool:
        """Whether this replica exports the series about ``cluster`` (lag, runs, alerts): only the
        holder of its monitor lease does, so ``sum()`` over any number of replicas counts each once.
        A process without monitors exports none of them."""
        return self._monitors is not None and self._monitors.leading.get(cluster, False)

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        """The lag families are written from the stored reports' JSON a piece at a time (no model
        and no kept line per pair: at 100,000 pairs the whole text is about 57 MB), then the bot's own."""
        reports: list[dict[str, Any]] = []
        for name in sorted(self._clusters):
            if not self._leads(name):
                continue
            try:
                raw = await self._reports.latest_raw(name)
                if raw is not None:
                    reports.append(checked_lag_document(raw))
            except Exception as exc:  # the bot's own metrics still answer
                log.warning("/metrics: no lag report for %s: %s", name, exc)
        out = Exposition()
        await self._add_runs(out)
        try:
            led = [name for name in sorted(self._clusters) if self._leads(name)]
            states = [s for name in led for s, _ in await self._alerts.load_cluster(name)]
            add_alerts(out, states, led, now=datetime.now(UTC))
        except Exception as exc:
            log.warning("/metrics: alerts unavailable: %s", exc)
        self._add_monitors(out)
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        await response.prepare(request)
        for chunk in lag_exposition(reports):
            await response.write(chunk.encode())
        await response.write(out.text().encode())
        await response.write_eof()
        return response

    async def _add_runs(self, out: Exposition) -> None:
        try:
            ids = list(dict.fromkeys([*await self._runs.active(None), *await self._runs.recent(None, RECENT_RUNS)]))
            runs = []
            for run_id in ids:
                loaded = await self._runs.load(run_id)
                if loaded is not None and self._leads(loaded[0].cluster):
                    runs.append(loaded[0])
            add_runs(out, runs, now=datetime.now(UTC))
        except Exception as exc:
            log.warning("/metrics: runs unavailable: %s", exc)

    def _add_monitors(self, out: Exposition) -> None:
        monitors = self._monitors
        if monitors is None:
            return
        out.declare("kafka_chatops_poll_duration_seconds")
        for (cluster, job), seconds in sorted(monitors.durations.items()):
            out.add("kafka_chatops_poll_duration_seconds", {"cluster": cluster, "job": job}, round(seconds, 4))
        out.declare("kafka_chatops_poll_overruns_total", "counter")
        for cluster in sorted(self._clusters):
            for job in ("health", "lag"):
                out.add("kafka_chatops_poll_overruns_total", {"cluster": cluster, "job": job},
                        monitors.overruns.get((cluster, job), 0), "counter")
        out.declare("kafka_chatops_watch_relists_total", "counter")
        for cluster, count in sorted(monitors.relists().items()):
            out.add("kafka_chatops_watch_relists_total", {"cluster": cluster}, count, "counter")
        out.declare("kafka_chatops_monitor_leader")
        for cluster in sorted(self._clusters):
            out.add("kafka_chatops_monitor_leader", {"cluster": cluster}, int(monitors.leading.get(cluster, False)))
        out.declare("kafka_chatops_lag_offsets_streamed")
        for cluster in sorted(self._clusters):
            out.add("kafka_chatops_lag_offsets_streamed", {"cluster": cluster}, int(monitors.streaming(cluster)))
