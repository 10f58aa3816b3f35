"""The reassignment plan's batches, ETA and the text the approver reads
(``runbooks.rules.reassignment_batches``), by example."""

from __future__ import annotations

import pytest

from runbooks.engine.models import PlanRefused
from runbooks.rules.reassignment import (
    PartitionMove,
    ReassignmentBroker,
)
from runbooks.rules.reassignment_batches import batch_moves, eta_seconds, human_bytes, human_duration, plan_text

from .reassignment_builders import GiB, MiB, brokers, plan, round_robin

# --- batches, ETA, text ---------------------------------------------------------------------------

def test_batches_bound_the_moves_per_broker_and_hold_every_move_once() -> None:
    p = plan(brokers(6), round_robin(6, 300), drain=(4,))
    batches = batch_moves(p.moves, max_moves_per_broker=3)
    assert sorted((m for b in batches for m in b.moves), key=lambda m: m.name) == sorted(p.moves, key=lambda m: m.name)
    for batch in batches:
        per_broker: dict[int, int] = {}
        for m in batch.moves:
            for b in m.involved:
                per_broker[b] = per_broker.get(b, 0) + 1
        assert max(per_broker.values()) <= 3
    assert len(batches) == 50  # every move involves broker 4: 150 moves, 3 at a time


def test_moves_into_one_broker_share_its_throttle_and_batches_add_up() -> None:
    into_one = (PartitionMove(topic="a", partition=0, old=(0,), new=(2,), leader=0, size_bytes=100 * MiB),
                PartitionMove(topic="b", partition=0, old=(1,), new=(2,), leader=1, size_bytes=100 * MiB))
    into_two = (into_one[0], into_one[1].model_copy(update={"new": (3,)}))
    assert eta_seconds(batch_moves(into_one), 10 * MiB) == 20.0  # broker 2 receives 200 MiB
    assert eta_seconds(batch_moves(into_two), 10 * MiB) == 10.0
    from_one_leader = tuple(m.model_copy(update={"leader": 0, "old": (0, 5)}) for m in into_two)
    assert eta_seconds(batch_moves(from_one_leader), 10 * MiB) == 20.0  # leader 0 sends 200 MiB
    one_at_a_time = batch_moves(into_two, max_moves_per_broker=1)
    assert len(one_at_a_time) == 1  # the two moves share no broker
    assert eta_seconds(batch_moves(into_one, max_moves_per_broker=1), 10 * MiB) == 20.0


@pytest.mark.parametrize(("call", "reason"), [
    (lambda: batch_moves((), max_moves_per_broker=0), "give 1 or more"),
    (lambda: eta_seconds((), 0), "give a rate above 0"),
])
def test_a_bound_or_throttle_that_would_never_finish_is_refused(call: object, reason: str) -> None:
    with pytest.raises(PlanRefused, match=reason):
        call()  # type: ignore[operator]


def test_the_approver_reads_replicas_bytes_eta_and_per_broker_flows() -> None:
    p = plan(brokers(6), round_robin(6, 300, size=2 * GiB), drain=(4,))
    text = plan_text(p, batch_moves(p.moves), 50 * MiB)
    assert text.splitlines()[0] == ("To empty broker(s) 4: move 150 replicas of 150 partitions (the minimum), "
                                    "300 GiB to copy.")
    assert "30 batches, at most 5 moves per broker at a time; ETA at 50 MiB/s: about " in text
    assert "broker 4: out 150 (300 GiB); 150 → 0 replicas" in text
    assert "Preferred leaders changed: 50." in text


def test_units_for_people() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1536, 50 * MiB, 3.5 * 1024 * GiB)] == [
        "0 B", "1023 B", "1.5 KiB", "50 MiB", "3.5 TiB"]
    assert [human_duration(s) for s in (0.2, 59, 61, 3600, 3661, 90000)] == [
        "1 s", "59 s", "2 min", "1 h", "1 h 2 min", "1 d 1 h"]


def test_a_leader_sends_one_copy_per_added_replica_and_large_moves_go_first() -> None:
    """A move adding two replicas makes its leader send the partition twice; and the largest moves
    share the first batch, so a small move never waits behind a large one in its batch."""
    twice = PartitionMove(topic="a", partition=0, old=(0,), new=(1, 2), leader=0, size_bytes=100 * MiB)
    assert eta_seconds(batch_moves((twice,)), 10 * MiB) == 20.0
    sizes = (1, 50, 2, 40)
    moves = tuple(PartitionMove(topic="t", partition=k, old=(0,), new=(k + 1,), leader=0, size_bytes=s * MiB)
                  for k, s in enumerate(sizes))
    batches = batch_moves(moves, max_moves_per_broker=2)
    assert [[m.size_bytes // MiB for m in b.moves] for b in batches] == [[50, 40], [2, 1]]
    assert eta_seconds(batches, MiB) == 90 + 3


@pytest.mark.parametrize(("call", "message"), [
    (lambda: batch_moves((), max_moves_per_broker=0),
     "at most 0 moves per broker at a time would never move anything: give 1 or more"),
    (lambda: eta_seconds((), -1), "a throttle of -1 bytes/s would never finish: give a rate above 0, e.g. 50MiB/s"),
])
def test_the_refusals_of_a_bound_or_throttle_read_in_full(call: object, message: str) -> None:
    with pytest.raises(PlanRefused) as refused:
        call()  # type: ignore[operator]
    assert str(refused.value) == message


def test_unit_boundaries() -> None:
    assert [human_bytes(n) for n in (1024, 1024**2, 1024**3, 1024**4, 2048 * 1024**4)] == [
        "1 KiB", "1 MiB", "1 GiB", "1 TiB", "2.05e+03 TiB"]
    assert [human_duration(s) for s in (60, 3599, 86400, 86400 + 3600 * 5)] == ["1 min", "1 h", "1 d", "1 d 5 h"]


def test_the_text_of_a_fill_a_plan_off_its_bound_and_a_plan_with_nothing_to_move() -> None:
    bs = (*brokers(6), *(ReassignmentBroker(id=b) for b in (6, 7)))
    p = plan(bs, round_robin(6, 60), fill=(6, 7))
    text = plan_text(p, batch_moves(p.moves), 50 * MiB)
    lines = text.splitlines()
    assert lines[0] == "To fill broker(s) 6, 7: move 44 replicas of 44 partitions (the minimum), 44 GiB to copy."
    assert lines[1].startswith("5 batches, at most 5 moves per broker at a time; ETA at 50 MiB/s: about ")
    assert lines[1].endswith(" (more if producers write to the moving partitions meanwhile).")
    assert lines[2] == f"Preferred leaders changed: {p.preferred_leaders_changed}."
    assert lines[3:] == ["Per broker:",
                         "  broker 6: in 22 (22 GiB); 0 → 22 replicas", "  broker 7: in 22 (22 GiB); 0 → 22 replicas",
                         "  broker 0: out 8 (8 GiB); 30 → 22 replicas", "  broker 1: out 8 (8 GiB); 30 → 22 replicas",
                         *(f"  broker {b}: out 7 (7 GiB); 30 → 23 replicas" for b in (2, 3, 4, 5))]
    assert lines[1] == ("5 batches, at most 5 moves per broker at a time; ETA at 50 MiB/s: about 8 min "
                        "(more if producers write to the moving partitions meanwhile).")
    off = p.model_copy(update={"lower_bound_replicas": 40})
    assert "(the minimum is 40)" in plan_text(off, batch_moves(off.moves), MiB)
    both = plan(bs, round_robin(6, 60), drain=(0,), fill=(6, 7))
    both_text = plan_text(both, batch_moves(both.moves), MiB)
    assert both_text.startswith("To empty broker(s) 0 and fill broker(s) 6, 7: move")
    none = p.model_copy(update={"moves": ()})
    assert plan_text(none, (), MiB) == "To fill broker(s) 6, 7: nothing to move (already done)."


def test_the_text_lists_the_busiest_brokers_and_sums_the_rest() -> None:
    p = plan(brokers(20), round_robin(20, 400), drain=(0,))
    lines = plan_text(p, batch_moves(p.moves), MiB).splitlines()
    listed = [line for line in lines if line.startswith("  broker ")]
    assert len(listed) == 12 and listed[0].startswith("  broker 0: out 60 (60 GiB); 60 → 0 replicas")
    rest = [f for f in p.brokers if f.replicas_in or f.replicas_out][12:]
    assert lines[-1] == f"  and {len(rest)} more brokers: in {sum(f.replicas_in for f in rest)}, out 0 replicas"
