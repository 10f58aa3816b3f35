"""replace-broker and scale on real brokers, through bot processes as users start them (issue 13 §5).

One sandbox for the module: 3 dual-role nodes (the controllers) and an empty broker-only pool
``brokers``, so the broker pool can grow to 4 and shrink back, and its broker can be replaced. A
topic of RF 3 and min.insync.replicas 2 holds incompressible data (the moves copy real bytes at a
real throttle), and an idempotent ``acks=all`` producer with a consumer runs through every change
(``tests/upgrade/traffic.py``). The tests run in file order: scale up 3 → 4, replace broker 3
(the bot SIGKILLed mid-move), a replacement aborted mid-move, scale down 4 → 3 with a receiving
broker SIGKILLed mid-move.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.steps.throttle_guard import SETTLE_S
from tests.engine.harness import APPROVER, REQUESTER, bot, read_audit, read_run, run_id_of, write_clusters_file
from tests.fixtures.bot_process import BotProcess, Event
from tests.fixtures.sandbox import SandboxInfo, start_sandbox
from tests.fixtures.waiting import wait_until
from tests.reassign.cluster_reads import (
    BrokerBytes,
    layout,
    load,
    moves_in_flight,
    replicas_on,
    strip_throttled_replicas,
    throttles,
)
from tests.upgrade.scenario import console_bots, make_topic, run_with_approvals
from tests.upgrade.traffic import Traffic

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(900)]

DATA, TRAFFIC = "moves", "traffic"
PARTITIONS = 6
DATA_MB = 192  # 32 MB a partition, 576 MB on disk at RF 3
THROTTLE_MIB = 8
QUOTA_HISTORY_S = 10.0  # Kafka's replication quota: 11 windows of 1 s, the 10 before the current one
SAMPLE_S = 0.5  # the sampler's interval: a sample's time is known to this
SCALE_DOWN_KIB = 1024  # a 32 MB move copies for about 20 s after Kafka's burst: the kill lands mid-move
LONG_MOVE_BYTES = 16 * 1024 * 1024
REPLACE_MIB = 2  # slow enough that the moves outlast Kafka's burst allowance (below), so the throttle shows
FETCH_OVERSHOOT = 3 * 10 * 1024 * 1024  # one fetch response (replica.fetch.response.max.bytes) per leader's fetcher
MiB = 1024 * 1024
NEW = 3  # the broker-only node's id (the dual-role nodes are 0-2)


@pytest.fixture(scope="module")
def grown(sandbox_home: Path) -> Iterator[SandboxInfo]:
    info = start_sandbox("reassign", brokers=3, extra_args=("--broker-only", "0"))
    try:
        make_topic(info, DATA, partitions=PARTITIONS)
        make_topic(info, TRAFFIC, partitions=3)
        load(info, DATA, megabytes=DATA_MB, partitions=PARTITIONS)
        yield info
    finally:
        info.down()  # free the cores for the next module


def approve_until(approver: BotProcess, redis_url: str, run_id: str, *, stop: str | None = None,
                  timeout: float = 600.0, since: int = 0, approve: bool = True) -> Event:
    """Approve every step of ``run_id`` that asks, until it finishes or an event ``stop`` arrives.
    A bot started after the run last asked has seen no request: the stored run is read when no event
    comes for a while, and a waiting approval is given from it."""
    seen = since
    deadline = time.monotonic() + timeout
    while True:
        try:
            event = approver.expect(lambda e: e.get("run_id") == run_id, timeout=10, since=seen,
                                    what=f"the next event of {run_id}")
        except AssertionError:
            run = read_run(redis_url, run_id)
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} stuck: {run['state']}, {run.get('pause_reason')}") from None
            if approve and run["state"] == "awaiting_approval":
                approver.send(f"approve {run_id} {run['approval']['step_id']}")
            continue
        seen = approver.past(event, seen)
        if event["event"] in ("run_finished", stop):
            return event
        if approve and event["event"] == "step_awaiting_approval":
            approver.send(f"approve {run_id} {event['step_id']}")


def after(process: BotProcess, event: Event) -> int:
    """The index in ``process.events`` just past ``event``: where the next wait starts."""
    return process.past(event)


def submitted(redis_url: str, run_id: str, prefix: str) -> bool:
    """Whether the run's current step is a batch of ``prefix`` whose moves were submitted (waiting)."""
    run = read_run(redis_url, run_id)
    return run["state"] == "waiting" and str(run["steps"][run["current"]]["spec"]["id"]).startswith(prefix)


def step_detail(redis_url: str, run_id: str) -> str:
    """What the card shows under the run's current step."""
    run = read_run(redis_url, run_id)
    return str(run["steps"][run["current"]].get("detail") or "")


def pod_uid(sandbox: SandboxInfo, node: int) -> str:
    return next(str(n["uid"]) for n in sandbox.status()["nodes"] if n["id"] == node)


def test_scale_up_gives_the_new_broker_its_share_under_traffic(
        grown: SandboxInfo, redis_url: str, tmp_path: Path) -> None:
    """3 → 4: the pool grows, broker 3 gets its fair share, no record is lost or doubled, no throttle left."""
    with console_bots(grown, redis_url, tmp_path) as bots, \
            Traffic(grown.bootstrap_servers, TRAFFIC, partitions=3) as traffic:
        run_id, last, _ = run_with_approvals(bots, f"scale {grown.cluster} brokers 1 --throttle {THROTTLE_MIB}MiB/s")
    assert last["final_state"] == "succeeded", read_run(redis_url, run_id).get("pause_reason")
    traffic.report().assert_exactly_once()
    now = layout(grown)
    replicas = sum(len(p.replicas) for p in now.partitions)
    assert len(replicas_on(grown, NEW)) >= replicas // 4
    assert throttles(grown).empty and moves_in_flight(grown) == []


def test_replace_broker_moves_off_replaces_and_moves_back_at_the_throttle(
        grown: SandboxInfo, redis_url: str, tmp_path: Path) -> None:
    """Broker 3 drained, wiped through Strimzi, and given back exactly its partitions, under traffic;
    the bot is SIGKILLed while a drain batch copies and the resumed run submits no move twice; the move
    back runs at 80-100 % of the throttle; no throttle is left."""
    before = replicas_on(grown, NEW)
    uid = pod_uid(grown, NEW)
    config = write_clusters_file(tmp_path / "clusters.yaml", grown)
    alice = bot(REQUESTER, redis_url=redis_url, sandbox=grown, config=config, log_dir=tmp_path).start()
    bob = bot(APPROVER, redis_url=redis_url, sandbox=grown, config=config, log_dir=tmp_path).start()
    sampler: BrokerBytes | None = None
    try:
        with Traffic(grown.bootstrap_servers, TRAFFIC, partitions=3) as traffic:
            run_id = run_id_of(alice.command(f"replace-broker {grown.cluster} {NEW} --throttle {REPLACE_MIB}MiB/s"))
            started = approve_until(bob, redis_url, run_id, stop="step_started")  # preflight
            approve_until(bob, redis_url, run_id, stop="step_started", since=after(bob, started))  # drain-1
            wait_until(lambda: submitted(redis_url, run_id, "drain-"), timeout=120, interval=0.05,
                       message="a drain batch submitted")
            alice.kill()
            bob.kill()
            print(f"bots killed with {len(moves_in_flight(grown))} moves in flight")
            time.sleep(1)
            alice = bot(REQUESTER, redis_url=redis_url, sandbox=grown, config=config, log_dir=tmp_path).start()
            bob = bot(APPROVER, redis_url=redis_url, sandbox=grown, config=config, log_dir=tmp_path).start()
            seen = 0
            while True:
                event = approve_until(bob, redis_url, run_id, stop="step_started", since=seen)
                seen = bob.past(event, seen)
                if event["event"] == "run_finished":
                    break
                if event["step_id"] == "back-1":  # broker 3 is back, empty: watch it fill
                    sampler = BrokerBytes(grown, NEW, DATA).__enter__()
                if event["step_id"] == "back-2" or event["step_id"] == "cancel-moves":
                    print("throttles while moving back:", throttles(grown))
                if event["step_id"] == "cancel-moves" and sampler is not None:
                    sampler.__exit__()
    finally:
        alice.stop()
        bob.stop()
    assert event["final_state"] == "succeeded", read_run(redis_url, run_id).get("pause_reason")
    traffic.report().assert_exactly_once()
    assert pod_uid(grown, NEW) != uid  # a new pod, on an empty disk
    held = replicas_on(grown, NEW)
    assert set(held) == set(before)  # exactly its partitions back
    assert throttles(grown).empty and moves_in_flight(grown) == []
    applied = [e.step_id for e in read_audit(redis_url, run_id) if e.action == "applied"]
    moves = [s for s in applied if s and s.startswith(("drain-", "back-"))]
    assert len(moves) == len(set(moves)), f"a batch was submitted twice: {moves}"
    assert sampler is not None, "the move back never started"
    print("samples (s, MiB):", [(round(t - sampler.samples[0][0], 1), round(b / MiB, 1)) for t, b in sampler.samples])
    rate, copied, seconds = sampler.rate(low=0.01, high=1.0)
    print(f"move back: {copied / MiB:.1f} MiB in {seconds:.1f} s = {rate / MiB:.2f} MiB/s "
          f"at a throttle of {REPLACE_MIB} MiB/s ({rate / (REPLACE_MIB * MiB):.0%}), from 10 % to 90 % of "
          f"what broker {NEW} ended with, sampled on it every 0.5 s")
    # Held, as Kafka's quota defines it: the rate is measured over 11 one-second windows, and a window
    # with little history counts as 10 full seconds; the check comes before each fetch, so one response
    # per fetcher thread can go past it. Any stretch of the copy may therefore move at most the throttle
    # times (its length + 10 s), plus one response per leader (unthrottled, such a move takes a few seconds).
    budget = REPLACE_MIB * MiB
    for (t0, b0), (t1, b1) in itertools.combinations(sampler.samples, 2):
        allowed = budget * (t1 - t0 + QUOTA_HISTORY_S + SAMPLE_S) + FETCH_OVERSHOOT
        assert b1 - b0 <= allowed, f"{(b1 - b0) / MiB:.1f} MiB in {t1 - t0:.1f} s at {REPLACE_MIB} MiB/s"
    assert copied <= budget * (seconds + QUOTA_HISTORY_S + SAMPLE_S) + FETCH_OVERSHOOT


def test_an_abort_mid_move_cancels_the_batch_and_clears_the_throttles(
        grown: SandboxInfo, redis_url: str, tmp_path: Path) -> None:
    """A replacement at 100 KiB/s aborted while its first drain batch copies: the cleanup cancels the
    moves in flight (those partitions keep their replicas) and removes every throttle; no record lost.
    Before the abort, the batch's throttled-replica lists are deleted behind the run's back (as Strimzi's
    Topic Operator does): the run sets them again and its card says so."""
    before = {f"{p.topic}-{p.partition}": p.replicas for p in layout(grown).partitions}
    with console_bots(grown, redis_url, tmp_path) as bots, \
            Traffic(grown.bootstrap_servers, TRAFFIC, partitions=3) as traffic:
        alice, bob = bots.requester, bots.approver
        run_id = run_id_of(alice.command(f"replace-broker {grown.cluster} {NEW} --throttle 100KiB/s"))
        started = approve_until(bob, redis_url, run_id, stop="step_started")  # preflight
        approve_until(bob, redis_url, run_id, stop="step_started", since=after(bob, started))  # drain-1
        wait_until(lambda: submitted(redis_url, run_id, "drain-"), timeout=120, interval=0.05,
                   message="a drain batch submitted")
        batch = current_moves(redis_url, run_id)
        assert moves_in_flight(grown) and not throttles(grown).empty, "at 100 KiB/s the batch copies, throttled"
        time.sleep(SETTLE_S + 1)  # before that, a throttle missing may be the brokers' view lagging the run's own set
        # The data topic's 32 MB moves: a small traffic partition's move can finish before the run
        # looks, and the run puts back only the lists of moves still in flight.
        assert any(name.startswith(f"{DATA}-") for name in moves_in_flight(grown)), "the data moves still copy"
        strip_throttled_replicas(grown, [DATA])  # the run may set them again before the next read
        wait_until(lambda: "throttle removed outside this run" in step_detail(redis_url, run_id), timeout=60,
                   interval=0.5, message="the run noticing its throttle removed")
        assert DATA in throttles(grown).topics, "the lists were set again"
        print("card:", step_detail(redis_url, run_id))
        # What the abort finds in flight: the data topic's 32 MB partitions (a small traffic partition
        # can finish between this read and the abort).
        copying = [name for name in moves_in_flight(grown) if name.startswith(f"{DATA}-")]
        assert copying, "still copying when the throttle came back"
        assert bob.command(f"abort {run_id}")["event"] == "reply"
        done = approve_until(bob, redis_url, run_id, timeout=300, since=len(bob.events), approve=False)
    run = read_run(redis_url, run_id)
    assert done["final_state"] == "aborted", run.get("pause_reason")
    assert run["outcome"].endswith("Cleanup done: Cancel any move of this run still in flight, Remove the "
                                   "replication throttles."), run["outcome"]
    traffic.report().assert_exactly_once()
    assert moves_in_flight(grown) == [] and throttles(grown).empty
    now = {f"{p.topic}-{p.partition}": p.replicas for p in layout(grown).partitions}
    for name in copying:
        assert set(now[name]) == set(before[name]), f"{name}: its cancelled move left {now[name]}"
    changed = {name for name in before if set(now[name]) != set(before[name])}
    assert changed <= {f"{m['topic']}-{m['partition']}" for m in batch}, "only the batch's moves ran"
    assert all(NEW not in now[name] for name in changed), "a move that finished took its replica off broker 3"


def test_scale_down_survives_a_receiver_killed_mid_move_and_empties_the_broker_first(
        grown: SandboxInfo, redis_url: str, tmp_path: Path) -> None:
    """4 → 3 at 1 MiB/s: the broker receiving the batch's largest move is SIGKILLed while it copies; the
    run pauses saying so and submits nothing more; Retry once it is back finishes. Broker 3 is drained
    before the pool shrinks, Strimzi never reverted it, no throttle is left, no record lost."""
    killed: dict[str, Any] = {}

    def on_event(event: Event) -> str | None:
        run_id = event["run_id"]
        if event["event"] == "step_started" and str(event.get("step_id")).startswith("drain-") and not killed:
            # A batch of the small traffic partitions is done at once: wait for one that copies for a while.
            largest = max(current_moves(redis_url, run_id), key=lambda m: m["size_bytes"])
            if largest["size_bytes"] < LONG_MOVE_BYTES:
                return None
            wait_until(lambda: submitted(redis_url, run_id, "drain-"), timeout=120, interval=0.05,
                       message="a drain batch submitted")
            killed["victim"] = next(b for b in largest["new"] if b not in largest["old"])
            killed["largest"] = f"{largest['topic']}-{largest['partition']}"
            grown.cli("kill-broker", str(killed["victim"]), "--down-for", "20")
            killed["moving"] = moves_in_flight(grown)
        elif event["event"] == "step_paused":
            assert "victim" in killed and "paused" not in killed, f"a pause before the kill, or a second: {event}"
            killed["paused"] = event
            killed["applied_while_paused"] = applied_steps(redis_url, run_id)
            wait_until(lambda: killed["victim"] in {b.id for b in layout(grown).brokers if b.alive}, timeout=120,
                       interval=0.5,
                       message=f"broker {killed['victim']} back")
            assert applied_steps(redis_url, run_id) == killed["applied_while_paused"], "nothing submitted"
            assert bots.approver.command(f"resume {run_id}")["event"] == "reply"
        return None

    with console_bots(grown, redis_url, tmp_path) as bots, \
            Traffic(grown.bootstrap_servers, TRAFFIC, partitions=3) as traffic:
        run_id, last, _ = run_with_approvals(bots, f"scale {grown.cluster} brokers 0 --throttle {SCALE_DOWN_KIB}KiB/s",
                                             on_event=on_event)
    assert last["final_state"] == "succeeded", read_run(redis_url, run_id).get("pause_reason")
    assert "victim" in killed, "no drain batch held a partition of the data topic"
    assert killed["largest"] in killed["moving"], f"the move was done before the kill: {killed}"
    paused = killed.get("paused")
    assert paused is not None, f"the run never paused after broker {killed['victim']} was killed"
    assert f"broker(s) {killed['victim']} not registered and alive: a broker died mid-move: no new batch " \
           "submitted" in paused["text"], paused
    traffic.report().assert_exactly_once()
    assert NEW not in {b.id for b in layout(grown).brokers}
    audit = read_audit(redis_url, run_id)
    drained = max(e.at for e in audit if (e.step_id or "").startswith("drain-"))
    patched = min(e.at for e in audit if e.step_id == "scale-pool" and e.action == "applied")
    assert drained < patched  # every drain batch was done before the pool was patched
    warnings = [c for c in (grown.status().get("kafka", {}).get("conditions") or [])
                if c.get("reason") == "ScaleDownPreventionCheck"]
    assert warnings == []
    assert throttles(grown).empty and moves_in_flight(grown) == []


def current_moves(redis_url: str, run_id: str) -> list[dict[str, Any]]:
    """The moves of the batch the stored run is on."""
    run = read_run(redis_url, run_id)
    return list(run["steps"][run["current"]]["spec"]["args"]["moves"])


def applied_steps(redis_url: str, run_id: str) -> list[str | None]:
    return [e.step_id for e in read_audit(redis_url, run_id) if e.action == "applied"]
