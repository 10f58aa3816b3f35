"""Reassignment planner benchmark (``python -m tests.bench reassign``): replicas moved by the planner
against the lower bound and against ``kafka-reassign-partitions --generate``, and the planner's CPU
time on 100,000 partitions over 60 brokers.

Clusters: N brokers (6, 12, 60; without racks, and with 3 racks), RF 3, 100 partitions per broker
in topics of 20 partitions, each topic created the way Kafka creates topics (the algorithm below,
seeded), partition sizes log-normal around 1 GiB per topic (real clusters have a few large
topics and many small ones). Requests: drain the highest id (Strimzi's scale-down choice), and add
1 and 3 empty brokers.

``--generate`` is computed the way the tool computes it (docs/kafka-ops.md §3.1): for each topic,
ignoring where its replicas are now, Kafka's topic-creation assignment over the broker list given;
its start index and replica shift are random, so the figure is the mean over GENERATE_RUNS seeds.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

from runbooks.rules.reassignment import PartitionPlacement, ReassignmentBroker, ReassignmentRequest
from runbooks.rules.reassignment_batches import batch_moves, eta_seconds, plan_text
from runbooks.rules.reassignment_plan import plan_reassignment

GiB = 1024**3
PARTITIONS_PER_BROKER = 100
TOPIC_PARTITIONS = 20
RF = 3
GENERATE_RUNS = 5
TIMING_RUNS = 5
THROTTLE = 50 * 1024**2
Brokers = tuple[ReassignmentBroker, ...]


# --- what `kafka-reassign-partitions --generate` proposes ------------------------------------------

def kafka_generate(brokers: Sequence[ReassignmentBroker], partitions: int, rf: int,
                   rnd: random.Random) -> list[tuple[int, ...]]:
    """One topic's assignment as Kafka's topic creation computes it (``AdminUtils``'s
    assignReplicasToBrokers), restated: brokers are put in a ring (alternating racks when every
    broker has one); partition p's first replica is the ring's (p + start)-th broker; the others
    follow at a distance that grows with a per-topic shift, bumped each time the partitions have
    gone once round the ring. With racks, a candidate is skipped while its rack (or itself) already
    holds a replica of the partition and some rack (or broker) holds none. ``start`` and the shift
    are random, which is why --generate is not the same from one run to the next."""
    racks = {b.id: b.rack for b in brokers}
    racked = all(r is not None for r in racks.values())
    ring = _rack_alternating(brokers) if racked else [b.id for b in brokers]
    rack_count = len(set(racks.values()))
    n = len(ring)
    start, shift = rnd.randrange(n), rnd.randrange(n)
    out = []
    for p in range(partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start) % n
        chosen = [ring[first]]
        if not racked:
            chosen += [ring[(first + 1 + (shift + j) % (n - 1)) % n] for j in range(rf - 1)]
        else:
            used_racks = {racks[ring[first]]}
            k = 0
            while len(chosen) < rf:
                candidate = ring[(first + 1 + (shift * rack_count + k) % (n - 1)) % n]
                k += 1
                if ((racks[candidate] not in used_racks or len(used_racks) == rack_count)
                        and (candidate not in chosen or len(chosen) == n)):
                    chosen.append(candidate)
                    used_racks.add(racks[candidate])
        out.append(tuple(chosen))
    return out


def _rack_alternating(brokers: Sequence[ReassignmentBroker]) -> list[int]:
    """Brokers by rack (racks sorted by name, brokers by id), taking one from each rack in turn."""
    by_rack: dict[str, list[int]] = {}
    for b in sorted(brokers, key=lambda b: b.id):
        by_rack.setdefault(str(b.rack), []).append(b.id)
    columns = [by_rack[r] for r in sorted(by_rack)]
    return [column[row] for row in range(max(map(len, columns))) for column in columns if row < len(column)]


def generate_moves(partitions: Sequence[PartitionPlacement], brokers: Sequence[ReassignmentBroker],
                   seed: int) -> tuple[int, int]:
    """Replicas and bytes --generate would copy: every broker of a new replica list not in the old one."""
    rnd = random.Random(seed)
    by_topic: dict[str, list[PartitionPlacement]] = {}
    for p in partitions:
        by_topic.setdefault(p.topic, []).append(p)
    replicas = copied = 0
    for topic_partitions in by_topic.values():
        proposed = kafka_generate(brokers, len(topic_partitions), len(topic_partitions[0].replicas), rnd)
        for p, new in zip(sorted(topic_partitions, key=lambda p: p.partition), proposed, strict=True):
            added = len(set(new) - set(p.replicas))
            replicas += added
            copied += added * p.size_bytes
    return replicas, copied


# --- clusters ------------------------------------------------------------------------------------

def cluster(n: int, racks: int, seed: int, partitions_per_broker: int = PARTITIONS_PER_BROKER,
            ) -> tuple[tuple[ReassignmentBroker, ...], tuple[PartitionPlacement, ...]]:
    rnd = random.Random(seed)
    brokers = tuple(ReassignmentBroker(id=b, rack=f"rack{b % racks}" if racks else None) for b in range(n))
    partitions = []
    for t in range(n * partitions_per_broker // TOPIC_PARTITIONS):
        median = rnd.lognormvariate(0, 1.5) * GiB  # per topic: a few big topics, many small
        for number, replicas in enumerate(kafka_generate(brokers, TOPIC_PARTITIONS, RF, rnd)):
            size = int(median * rnd.uniform(0.8, 1.2))
            partitions.append(PartitionPlacement(topic=f"topic{t}", partition=number, replicas=replicas,
                                                 leader=replicas[0], size_bytes=size))
    return brokers, tuple(partitions)


def added_brokers(brokers: tuple[ReassignmentBroker, ...], k: int, racks: int) -> tuple[ReassignmentBroker, ...]:
    n = len(brokers)
    return brokers + tuple(ReassignmentBroker(id=b, rack=f"rack{b % racks}" if racks else None)
                           for b in range(n, n + k))


def movement(n: int, racks: int) -> list[dict[str, Any]]:
    brokers, partitions = cluster(n, racks, seed=n)
    rows = []
    cases: list[tuple[str, Brokers, frozenset[int], frozenset[int], Brokers]]
    cases = [("drain 1", brokers, frozenset({n - 1}), frozenset(), brokers[:-1])]
    for k in (1, 3):
        grown = added_brokers(brokers, k, racks)
        cases.append((f"add {k}", grown, frozenset(), frozenset(range(n, n + k)), grown))
    for name, all_brokers, drain, fill, generate_list in cases:
        request = ReassignmentRequest(brokers=all_brokers, partitions=partitions, drain=drain, fill=fill)
        plan = plan_reassignment(request)
        generated = [generate_moves(partitions, generate_list, seed) for seed in range(GENERATE_RUNS)]
        gen_replicas = statistics.mean(r for r, _ in generated)
        gen_bytes = statistics.mean(b for _, b in generated)
        batches = batch_moves(plan.moves)
        rows.append({
            "brokers": n, "racks": racks, "partitions": len(partitions), "request": name,
            "lower_bound": plan.lower_bound_replicas, "planner": plan.replicas_moved,
            "generate_mean": round(gen_replicas), "generate_min_max": [min(r for r, _ in generated),
                                                                       max(r for r, _ in generated)],
            "generate_over_lower_bound": round(gen_replicas / plan.lower_bound_replicas, 2),
            "planner_tib": round(plan.bytes_to_copy / 1024**4, 3), "lower_bound_tib": round(
                plan.lower_bound_bytes / 1024**4, 3), "generate_tib": round(gen_bytes / 1024**4, 3),
            "preferred_leaders_changed": plan.preferred_leaders_changed, "shortfalls": len(plan.shortfalls),
            "batches": len(batches), "eta_h_at_50MiB": round(eta_seconds(batches, THROTTLE) / 3600, 1),
        })
    return rows


def timing() -> dict[str, Any]:
    """CPU seconds (process time) to plan 100,000 partitions over 60 brokers, each repeated."""
    t0 = time.process_time()
    brokers, partitions = cluster(60, 0, seed=60, partitions_per_broker=100_000 // 60 + 1)
    partitions = partitions[:100_000]
    build = time.process_time() - t0
    grown = added_brokers(brokers, 3, 0)
    requests = {
        "drain 1": ReassignmentRequest(brokers=brokers, partitions=partitions, drain=frozenset({59})),
        "add 3": ReassignmentRequest(brokers=grown, partitions=partitions, fill=frozenset({60, 61, 62})),
        "replace 1 by 1 new": ReassignmentRequest(brokers=added_brokers(brokers, 1, 0), partitions=partitions,
                                                 drain=frozenset({59}), fill=frozenset({60})),
    }
    out: dict[str, Any] = {"partitions": len(partitions), "build_request_cpu_s": round(build, 3)}
    for name, request in requests.items():
        plan_s, batch_s = [], []
        for _ in range(TIMING_RUNS):
            t0 = time.process_time()
            plan = plan_reassignment(request)
            t1 = time.process_time()
            plan_text(plan, batch_moves(plan.moves), THROTTLE)
            batch_s.append(time.process_time() - t1)
            plan_s.append(t1 - t0)
        out[name] = {"moves": len(plan.moves), "plan_cpu_s": [round(x, 3) for x in plan_s],
                     "plan_cpu_s_median": round(statistics.median(plan_s), 3),
                     "batches_and_text_cpu_s_median": round(statistics.median(batch_s), 3)}
    return out


def machine() -> dict[str, Any]:
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                     platform.processor())
    return {"date": date.today().isoformat(), "python": platform.python_version(), "cpu": model,
            "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    print(json.dumps({"machine": machine()}), flush=True)
    for n in (6, 12, 60):
        for racks in (0, 3):
            for row in movement(n, racks):
                print(json.dumps(row), flush=True)
    print(json.dumps({"timing": timing(), "load_average_after": [round(x, 2) for x in os.getloadavg()]}), flush=True)


if __name__ == "__main__":
    main()
