"""Ack latency of the Slack front end, beside a bare Bolt ``AsyncApp`` that only acks.

``python -m tests.bench.slack_ack [--rounds N] [--transport http|dispatch|both] [--processes N]
[--write BENCHMARKS.md]``

Both apps get the same signed requests, 20 at a time, in alternating bursts of the same run, so
machine load hits both alike, over two transports: over HTTP (a separate load process POSTs to
the aiohttp server ``kafka-chatops run --http --processes N`` uses, each app served by N processes
sharing its port: what Slack sees, minus the network) and in process (``AsyncApp.async_dispatch``
called directly, one process: the app's own work only).

Ours does its real work before acking: a slash command ``/kafka restart <cluster> --brokers 0``
plans against a fake cluster (no Kubernetes or Kafka latency) and writes the run, holding the
cluster lock, with its event, to a real redis-server in one script; an Approve click loads the
run, decides, and writes it with compare-and-set. The engine worker and the card publisher (posting to a stub Web
API in another process) run meanwhile in the first process, driving that round's runs (aborted
after each round, so it drives a handful, as a live bot does); redis-server is the test
fixture's (AOF, appendfsync always).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import slack_bolt
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.app import Runtime
from bot.foreground import SharedInFlight
from bot.slack.app import build_front_end, build_web_client
from bot.slack.blocks import APPROVE_ACTION, ButtonValue
from bot.slack.commands import COMMAND
from bot.slack.processes import RequestServers
from bot.slack.run import EVENTS_PATH, http_app
from bot.store import RunStore
from bot.store.repository import RedisRunRepository
from runbooks.engine.models import Actor, RunState
from tests.bench.http_load import load_generator
from tests.fakes.cluster import APPROVER, APPROVER_GROUP, GROUP_MEMBER, REQUESTER, FakeCluster, managed
from tests.fixtures.fake_runtime import close_runtime, fake_runtime
from tests.fixtures.redis_server import RedisServer
from tests.slack.payloads import (
    BOT_TOKEN,
    SIGNING_SECRET,
    block_actions_body,
    block_actions_payload,
    signed_headers,
    slash_body,
    slash_payload,
)

CONCURRENCY = 20
TRANSPORTS = ("http", "dispatch")
KINDS = ("slash", "click")
APPS = ("bare", "ours")
# Between bursts: the card renders a burst causes (debounced, 0.25 s later) finish before the next
# burst, so each burst measures 20 concurrent requests, not a sustained overload.
PAUSE_S = 1.0
HEADING = "## Slack ack latency"


@contextlib.contextmanager
def stub_process() -> Iterator[str]:
    """The stub Web API in its own process: in a thread of this one it would compete for the GIL
    with the event loop being measured, which Slack's servers do not."""
    code = ("import sys, time; from tests.slack.stub_web_api import StubWebApi; "
            f"api = StubWebApi(usergroups={{{APPROVER_GROUP!r}: [{GROUP_MEMBER!r}]}}).start(); "
            "print(api.url, flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait(10)


def bare_app(api_url: str) -> AsyncApp:
    """The baseline: the same Bolt stack, listeners that only ack."""
    app = AsyncApp(client=build_web_client(BOT_TOKEN, api_url), signing_secret=SIGNING_SECRET)

    async def just_ack(ack):  # type: ignore[no-untyped-def]
        await ack()

    app.command(COMMAND)(just_ack)
    app.action(APPROVE_ACTION)(just_ack)
    return app


async def timed(app: AsyncApp, body: str) -> float:
    request = AsyncBoltRequest(body=body, headers=signed_headers(body))
    started = time.perf_counter()
    response = await app.async_dispatch(request)
    elapsed = time.perf_counter() - started
    assert response.status == 200, (response.status, response.body)
    return elapsed * 1000


async def burst(app: AsyncApp, bodies: list[str]) -> list[float]:
    return list(await asyncio.gather(*(timed(app, body) for body in bodies)))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def bench(rounds: int, transports: tuple[str, ...] = TRANSPORTS, processes: int = 2) -> dict[str, list[float]]:
    with stub_process() as api_url, RedisServer() as redis_server, load_generator() as load:
        per_round = CONCURRENCY * 2 * len(transports)
        names = [f"c{i}" for i in range((rounds + 1) * per_round)]
        runtime = await fake_runtime(redis_server.url, {n: managed(n) for n in names}, FakeCluster())
        runs = RedisRunRepository(RunStore(runtime.redis))
        front = build_front_end(runtime, build_web_client(BOT_TOKEN, api_url), signing_secret=SIGNING_SECRET,
                                socket_mode=False)
        bare = bare_app(api_url)
        response_url = api_url.replace("/api/", "/response/bench")
        await runtime.start()
        await front.start()
        servers = [await serve_http(front.app, shared=processes > 1), await serve_http(bare, shared=processes > 1)]
        urls = {"ours": servers[0][1], "bare": servers[1][1]}
        # The other processes of each app, as `kafka-chatops run --http --processes N` starts them,
        # ours with the board that lets background work here wait for their requests too.
        board = SharedInFlight.create(processes) if processes > 1 else None
        runtime.foreground.share(board)
        request_servers = [
            RequestServers([sys.executable, "-m", "tests.bench.slack_request_server", app, redis_server.url, api_url,
                            str(port_of(urls[app])), str(len(names))], processes - 1,
                           board=board if app == "ours" else None)
            for app in APPS]
        apps = {"ours": front.app, "bare": bare}
        gc.freeze()  # as `kafka-chatops run` does once started (bot.slack.run.serve)
        samples: dict[str, list[float]] = {f"{t} {a} {k}": [] for t in transports for k in KINDS for a in APPS}
        try:
            for servers_of_app in request_servers:
                await servers_of_app.start()
            for r in range(rounds + 1):  # round 0 warms both up (auth.test, imports, connections)
                for t, transport in enumerate(transports):
                    base = r * per_round + t * CONCURRENCY * 2
                    click_clusters = names[base:base + CONCURRENCY]
                    slash_clusters = names[base + CONCURRENCY:base + 2 * CONCURRENCY]
                    click_runs, click_values = await runs_awaiting_approval(runtime, runs, click_clusters)
                    bodies = {
                        "slash": [slash_body(slash_payload(f"restart {c} --brokers 0", REQUESTER,
                                                           response_url=response_url)) for c in slash_clusters],
                        "click": [block_actions_body(block_actions_payload(APPROVE_ACTION, v, APPROVER,
                                                                           response_url=response_url))
                                  for v in click_values],
                    }
                    for kind in KINDS:
                        for app in APPS:
                            if transport == "http":
                                values = await load.burst(urls[app], bodies[kind])
                            else:
                                values = await burst(apps[app], bodies[kind])
                            if r:
                                samples[f"{transport} {app} {kind}"] += values
                            await asyncio.sleep(PAUSE_S)
                    await check_work_was_done(runs, slash_clusters, click_runs)
                    # Finish this round's runs, so the worker drives a handful of runs, as a real bot does.
                    for run_id in [*click_runs, *(await runs.active())]:
                        await runtime.service.actions.abort(run_id, Actor(id=REQUESTER))
        finally:
            for servers_of_app in request_servers:
                await servers_of_app.stop()
            for runner, _ in servers:
                await runner.cleanup()
            await front.close()
            await close_runtime(runtime)
            if board is not None:
                board.close()
    return samples


async def serve_http(app: AsyncApp, *, shared: bool) -> tuple[web.AppRunner, str]:
    """The app behind the same aiohttp server `kafka-chatops run --http` uses, on a free loopback port
    (SO_REUSEPORT when other processes are to share it)."""
    runner = web.AppRunner(http_app(app, SIGNING_SECRET), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, reuse_port=shared or None)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}{EVENTS_PATH}"


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


async def runs_awaiting_approval(
        runtime: Runtime, runs: RedisRunRepository, clusters: list[str]) -> tuple[list[str], list[str]]:
    """One run per cluster, driven by the worker to its first approval: the run ids and Approve button values."""
    run_ids: list[str] = []
    for name in clusters:
        reply = await runtime.service.handle_text(f"restart {name} --brokers 0", Actor(id=REQUESTER), channel="C0B")
        assert reply.run is not None, reply.text
        run_ids.append(reply.run.id)
    buttons: list[str] = []
    deadline = time.monotonic() + 120
    for run_id in run_ids:
        while True:
            loaded = await runs.load(run_id)
            assert loaded is not None
            run = loaded[0]
            step = run.current_step
            # Also wait for the advisory gate check, as a human reading the card would.
            if run.state is RunState.AWAITING_APPROVAL and run.approval is not None and step and step.detail:
                buttons.append(ButtonValue(run.id, run.approval.step_id, run.approval.nonce, run.plan_hash).encode())
                break
            assert time.monotonic() < deadline, f"{run_id} never reached its approval"
            await asyncio.sleep(0.05)
    await asyncio.sleep(PAUSE_S)  # their cards are posted before the measurement starts
    return run_ids, buttons


async def check_work_was_done(runs: RedisRunRepository, slash_clusters: list[str], clicked: list[str]) -> None:
    """The acks were not empty promises: a run per slash command, every clicked run approved once."""
    for cluster in slash_clusters:
        assert await runs.recent(cluster, limit=1), f"/kafka restart {cluster} acked without creating its run"
    for run_id in clicked:
        approvals = [e for e in await runs.audit(run_id) if e.action == "approve"]
        assert len(approvals) == 1, f"{run_id}: {len(approvals)} approvals"



def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = match.group(1).strip() if match else model
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores (nproc), {model}, Python {platform.python_version()}, slack-bolt "
            f"{slack_bolt.version.__version__}; load average {load:.1f} at start")


TRANSPORT_TITLES = {
    "http": "Over HTTP, as Slack sees it: signed POSTs from another process to the same aiohttp server "
            "`kafka-chatops run --http --processes {processes}` uses, each app served by {processes} process(es) "
            "sharing its port, over kept-alive loopback connections",
    "dispatch": "In process, without the HTTP server: `AsyncApp.async_dispatch` called directly "
                "(the stricter view: only the app's own work)",
}


def ratios(samples: dict[str, list[float]], transport: str) -> dict[str, float]:
    def p99(app: str, kind: str) -> float:
        return percentile(samples[f"{transport} {app} {kind}"], 99)

    return {kind: p99("ours", kind) / p99("bare", kind) for kind in KINDS}


def report(samples: dict[str, list[float]], rounds: int, transports: tuple[str, ...], processes: int) -> str:
    lines = [
        HEADING, "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        f"`python -m tests.bench.slack_ack --rounds {rounds} --processes {processes}`: {rounds} rounds of "
        f"{CONCURRENCY} concurrent requests per kind, the bare app and ours alternating in the same run "
        "(tests/bench/slack_ack.py says what each does before its ack). Target: our p99 at most 1.5 times the "
        "bare app's.",
    ]
    for transport in transports:
        r = ratios(samples, transport)
        verdict = "met" if max(r.values()) <= 1.5 else "NOT met"
        lines += [
            "", f"{TRANSPORT_TITLES[transport].format(processes=processes)}: target **{verdict}** "
            f"(slash {r['slash']:.2f}x, click {r['click']:.2f}x).", "",
            "| requests | app | n | p50 ms | p99 ms | max ms | p99 / bare p99 |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind in KINDS:
            bare_p99 = percentile(samples[f"{transport} bare {kind}"], 99)
            for app in APPS:
                values = samples[f"{transport} {app} {kind}"]
                p99 = percentile(values, 99)
                name = "slash command `/kafka restart`" if kind == "slash" else "Approve click"
                label = "bare Bolt (ack only)" if app == "bare" else "kafka-chatops"
                lines.append(f"| {name} | {label} | {len(values)} | {statistics.median(values):.1f} | {p99:.1f} "
                             f"| {max(values):.1f} | {p99 / bare_p99:.2f} |")
    lines += [
        "", "How ours gets there: the bare app's ~11 ms is one tick of Bolt's 10 ms ack polling "
        "(`process_before_response=False`). Ours writes the run (or the approval) to Redis before it acks, "
        "as the issue requires, and is built with `process_before_response=True`: its listeners return right "
        "after the ack (what follows runs in the background), so Bolt answers without waiting for a poll "
        "tick. Background work (the worker's next step, card edits) waits while any of the bot's processes "
        "has requests in flight or answered one in the last 10 ms (at most 0.1 s; `bot/foreground.py`); "
        "each write publishes its run event from the same Lua script. "
        "Over HTTP, `--processes 2` answers from two processes sharing the port (`bot/slack/processes.py`).", "",
        "Where the CPU goes: in process, in bursts of 20 with nothing else running, a bare slash command "
        "costs about 125 µs of CPU before its ack and ours about 550 µs: Bolt and our listener wrapper as "
        "bare, then parsing, planning, the engine and the reply, and one Redis round trip through redis-py "
        "(the run's create, which takes the cluster lock in the same script). Counted with valgrind's "
        "cachegrind over serial requests (the ack and what follows it), ours is 4.6 M instructions per slash "
        "command. A burst's requests share a process's event loop, so each acks after about the CPU of the "
        "whole burst on its process, and a second process halves the burst each one carries (over HTTP the "
        "kernel hashes each kept-alive connection to one process, so the split is rarely exactly even).", "",
        "Why p99 moves between runs: in the slowest bursts the process used about twice the CPU time of a "
        "typical burst for the same function-call counts (cProfile) with no page faults or waits "
        "(getrusage): the virtual CPU ran slower (other tenants of the host). The bare app hardly notices, "
        "because its latency is mostly its 10 ms sleep; ours is CPU, so those bursts set its p99. In process "
        "(one process by definition) the engine worker and card publisher also drive the runs the HTTP "
        "rounds created, which is why those figures are the worst. The load generator itself does not "
        "collect garbage during a burst (one of its collections, 12 ms, once landed inside a burst).", "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace (or append) only the "Slack ack latency" section; other sections are left as they are."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    # Up to the next heading of any level: other people's sections may follow as ### too.
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^#{{1,6}} |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def figures(samples: dict[str, list[float]], transports: tuple[str, ...]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, values in samples.items():
        name = key.replace(" ", "_")
        result[f"{name}_p50_ms"] = round(statistics.median(values), 1)
        result[f"{name}_p99_ms"] = round(percentile(values, 99), 1)
    for transport in transports:
        for kind, ratio in ratios(samples, transport).items():
            result[f"{transport}_{kind}_p99_ratio"] = round(ratio, 2)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m tests.bench slack`` calls this without arguments (defaults, no file written)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--transport", choices=(*TRANSPORTS, "both"), default="both")
    parser.add_argument("--processes", type=int, default=2,
                        help="HTTP: processes serving each app, as `kafka-chatops run --http --processes` (default 2)")
    parser.add_argument("--write", type=Path, help="update this file's Slack section (e.g. BENCHMARKS.md)")
    args = parser.parse_args(argv or [])
    transports = TRANSPORTS if args.transport == "both" else (args.transport,)
    samples = asyncio.run(bench(args.rounds, transports, args.processes))
    section = report(samples, args.rounds, transports, args.processes)
    print(section)
    result = figures(samples, transports)
    print(json.dumps(result, indent=2))
    if args.write:
        write_section(args.write, section)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
