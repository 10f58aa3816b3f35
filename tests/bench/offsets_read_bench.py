"""Reading ``__consumer_offsets`` without Kafka (``python -m tests.bench offsets-read``): the CPU of
turning fetched record batches into the stream's state, per record, the way the group coordinator
writes them (one batch per OffsetCommit request: a group's commit of every partition it reads).

Two paths over the same bytes, with every pair already known (the steady state) and every commit
moving (the worst case of the issue's "every group commits every second"):

- ``consumer``: what aiokafka's consumer did before (``PartitionRecords``: a ``ConsumerRecord`` per
  record, then ``OffsetsState.apply``);
- ``fetched``: ``bot.kafka.offsets_fetch.apply_fetched``, batches handed whole to the state.

The figure the issue's target reads: the share of a core that 100,000 commit records a second cost.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from bot.kafka.offsets_fetch import apply_fetched
from bot.kafka.offsets_state import OffsetsState
from tests.bench.lag_workload import LARGE, SMALL, Shape, run_shapes
from tests.kafka.offsets_records import offset_key, offset_value, record_batch

RUNS = 5
TP = TopicPartition("__consumer_offsets", 0)
READ_COMMITTED = 1


def commits(shape: Shape, offset: int, base: int) -> bytes:
    """Every group's commit of every partition it reads, one batch a group, from offset ``base``."""
    out = bytearray()
    for group, reads in shape.group_topics().items():
        batch = [(offset_key(group, topic, p), offset_value(offset, 3, commit_ms=1_700_000_000_000))
                 for topic in reads for p in range(shape.partitions)]
        out += record_batch(base, batch)
        base += len(batch)
    return bytes(out)


def through_consumer(state: OffsetsState, data: bytes, position: int) -> None:
    for record in PartitionRecords(TP, MemoryRecords(data), [], position, None, None, True, READ_COMMITTED):
        state.apply(record.key, record.value)


def through_fetch(state: OffsetsState, data: bytes, position: int) -> None:
    apply_fetched(state, data, [], position)


def run(shape: Shape) -> dict[str, Any]:
    figures: dict[str, Any] = {"pairs": shape.pairs}
    rounds = [commits(shape, offset, base=shape.pairs * i) for i, offset in enumerate((100, 101, 101))]
    for name, read in (("consumer", through_consumer), ("fetched", through_fetch)):
        state = OffsetsState()
        cpu = time.process_time()
        read(state, rounds[0], 0)
        figures[f"{name}_replay_records_per_cpu_s"] = round(shape.pairs / (time.process_time() - cpu))
        for label, data, position in (("moved", rounds[1], shape.pairs), ("same", rounds[2], 2 * shape.pairs)):
            cpus = []
            for _ in range(RUNS):
                cpu = time.process_time()
                read(state, data, position)
                cpus.append(time.process_time() - cpu)
            per_record = statistics.median(cpus) / shape.pairs
            figures[f"{name}_{label}_us_per_record"] = round(per_record * 1e6, 3)
            figures[f"{name}_{label}_core_share_at_100k_per_s"] = round(per_record * 100_000, 4)
        assert state.pairs() == shape.pairs and state.skipped == 0
    return figures


def main() -> dict[str, Any]:
    return run_shapes(run, {"small": SMALL, "large": LARGE}, ["large"])


if __name__ == "__main__":
    main()
