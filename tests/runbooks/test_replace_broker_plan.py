"""The replace-broker plan read whole for a 4-broker cluster, and every refusal word for word.

The plan is the contract with the executors (kinds and arguments) and its texts are what the
approver reads: both are checked exactly. Each refusal case breaks one rule on an otherwise
healthy cluster, so the test fails if that rule goes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runbooks.catalogue.replace_broker import ReplaceBrokerInput, ReplaceBrokerParams, plan
from runbooks.catalogue.replica_steps import parse_rate
from runbooks.engine.models import PlanRefused, StepSpec
from runbooks.rules.health import ClusterSnapshot
from runbooks.rules.reassignment import ReassignmentBroker
from tests.runbooks.reassignment_builders import MiB, brokers, part

pytestmark = pytest.mark.timeout(10)

PARTS = (part("t-0", (0, 1, 2), size=100 * MiB), part("t-1", (1, 2, 3), size=100 * MiB),
         part("t-2", (2, 3, 0), size=100 * MiB), part("t-3", (3, 0, 1), size=100 * MiB))
PODS = {i: f"c-kafka-{i}" for i in range(4)}
SNAP = ClusterSnapshot(taken_at=datetime(2026, 1, 1, tzinfo=UTC), brokers=())


def world(bs: tuple[ReassignmentBroker, ...] = brokers(4), *, controllers: tuple[int, ...] = (),
          parts: tuple = PARTS) -> ReplaceBrokerInput:  # type: ignore[type-arg]
    return ReplaceBrokerInput(brokers=bs, partitions=parts, pods=PODS, controllers=controllers, snapshot=SNAP)


def move(p: int, old: tuple[int, ...], new: tuple[int, ...], leader: int) -> dict[str, object]:
    return {"topic": "t", "partition": p, "old": old, "new": new, "leader": leader, "size_bytes": 100 * MiB}


def shape(steps: list[StepSpec]) -> list[tuple[str, str, bool, bool]]:
    return [(s.id, s.kind, s.needs_approval, s.cleanup) for s in steps]


def test_a_live_broker_is_drained_replaced_and_its_exact_replica_lists_restored() -> None:
    steps = plan(ReplaceBrokerParams(broker=3), world())
    assert shape(steps) == [
        ("preflight", "preflight", False, False),
        ("drain-1", "move-replicas", True, False),
        ("replace", "replace-pod-and-pvc", True, False),
        ("back-1", "move-replicas", True, False),
        ("cancel-moves", "cancel-moves", False, True),
        ("clear-throttles", "clear-throttles", False, True),
        ("elect-leaders", "elect-leaders", True, False),
        ("verify", "verify-replicas", False, False),
    ]
    args = {s.id: s.args.model_dump() for s in steps}
    rate = 50 * MiB
    # Only broker 3's replicas move: the minimum; broker 3 led t-3, so a survivor (0) takes its place.
    assert args["drain-1"] == {"kind": "move-replicas", "throttle_bytes_per_s": rate, "moves": (
        move(1, (1, 2, 3), (1, 2, 0), 1), move(2, (2, 3, 0), (2, 1, 0), 2), move(3, (3, 0, 1), (0, 2, 1), 3))}
    # The move back restores each original list exactly, in order: broker 3 leads t-3 again.
    assert args["back-1"] == {"kind": "move-replicas", "throttle_bytes_per_s": rate, "moves": (
        move(1, (1, 2, 0), (1, 2, 3), 1), move(2, (2, 1, 0), (2, 3, 0), 2), move(3, (0, 2, 1), (3, 0, 1), 0))}
    assert args["replace"] == {"kind": "replace-pod-and-pvc", "broker": 3, "pod": "c-kafka-3", "expect_empty": True}
    originals = ({"topic": "t", "partition": 1, "replicas": (1, 2, 3)},
                 {"topic": "t", "partition": 2, "replicas": (2, 3, 0)},
                 {"topic": "t", "partition": 3, "replicas": (3, 0, 1)})
    assert args["cancel-moves"] == {"kind": "cancel-moves", "partitions": originals}
    assert args["clear-throttles"] == {"kind": "clear-throttles", "brokers": (0, 1, 2, 3), "topics": ("t",)}
    assert args["verify"] == {"kind": "verify-replicas", "partitions": originals, "broker": 3}
    by_id = {s.id: s for s in steps}
    assert by_id["drain-1"].summary == (
        "To empty broker(s) 3: move 3 replicas of 3 partitions (the minimum), 300 MiB to copy.\n"
        "1 batches, at most 5 moves per broker at a time; ETA at 50 MiB/s: about 2 s (more if producers write to "
        "the moving partitions meanwhile).\n"
        "Preferred leaders changed: 1.\n"
        "Per broker:\n"
        "  broker 3: out 3 (300 MiB); 3 → 0 replicas\n"
        "  broker 0: in 1 (100 MiB); 3 → 4 replicas\n"
        "  broker 1: in 1 (100 MiB); 3 → 4 replicas\n"
        "  broker 2: in 1 (100 MiB); 3 → 4 replicas\n"
        "At risk: while they copy, the moving partitions lean on their current replicas; broker 3's replicas stay in "
        "sync until each move completes. Brokers 0, 1, 2, 3 replicate at up to 50 MiB/s each on top of their "
        "traffic; the batches after this one follow without asking. Abort cancels the moves in flight and clears "
        "the throttles.")
    assert by_id["replace"].summary == (
        "Strimzi deletes pod c-kafka-3 and its PVC (strimzi.io/delete-pod-and-pvc); broker 3 comes back with an "
        "empty disk and the same id. At risk: nothing is lost if broker 3 is empty (the step refuses to start "
        "otherwise); until the move back the cluster runs one broker short.")
    assert by_id["back-1"].summary.startswith(
        "Move 3 replicas of 3 partitions, 300 MiB to copy, 1 batches; ETA at 50 MiB/s: about 6 s.\nAt risk: broker 3 "
        "is new and empty and receives every replica it had")
    assert all(s.compensation for s in steps), [s.id for s in steps if not s.compensation]
    assert all("At risk" in s.summary for s in steps if s.needs_approval)


def test_many_moves_are_cut_into_batches_only_the_first_of_each_phase_asks() -> None:
    """12 partitions on broker 3 of 4: more than 5 moves per broker, so two batches per phase."""
    parts = tuple(part(f"t-{i}", (3, i % 3, (i + 1) % 3), size=MiB) for i in range(12))
    steps = plan(ReplaceBrokerParams(broker=3, throttle="10MB/s"), world(parts=parts))
    moving = [(s.id, s.needs_approval, len(s.args.moves)) for s in steps if s.kind == "move-replicas"]  # type: ignore[attr-defined]
    assert [m[0] for m in moving] == ["drain-1", "drain-2", "drain-3", "back-1", "back-2", "back-3"]
    assert [m[1] for m in moving] == [True, False, False, True, False, False]
    assert sum(m[2] for m in moving[:3]) == sum(m[2] for m in moving[3:]) == 12
    assert all(s.args.throttle_bytes_per_s == 10_000_000 for s in steps if s.kind == "move-replicas")  # type: ignore[attr-defined]


def test_a_dead_broker_is_replaced_then_catches_up_under_a_follower_throttle() -> None:
    steps = plan(ReplaceBrokerParams(broker=3), world(brokers(4, dead=(3,))))
    assert shape(steps) == [
        ("replace", "replace-pod-and-pvc", True, False),
        ("catch-up", "catch-up-replicas", False, False),
        ("clear-throttles", "clear-throttles", False, True),
        ("elect-leaders", "elect-leaders", True, False),
        ("verify", "verify-replicas", False, False),
    ]
    assert steps[0].args.model_dump() == {"kind": "replace-pod-and-pvc", "broker": 3, "pod": "c-kafka-3",
                                          "expect_empty": False}
    assert steps[1].args.model_dump()["partitions"] == (
        {"topic": "t", "partition": 1, "replicas": (1, 2, 3)}, {"topic": "t", "partition": 2, "replicas": (2, 3, 0)},
        {"topic": "t", "partition": 3, "replicas": (3, 0, 1)})
    assert steps[2].args.model_dump() == {"kind": "clear-throttles", "brokers": (3,), "topics": ("t",)}
    assert steps[0].summary.endswith("At risk: broker 3 is already down; its 3 replicas are lost with its disk and "
                                     "are copied again from their leaders next. Every other broker must stay up "
                                     "meanwhile.")


def test_keep_data_is_the_restarts_restart_broker_step_only() -> None:
    steps = plan(ReplaceBrokerParams(broker=3, keep_data=True), world(controllers=(3,)))
    assert shape(steps) == [("restart-3", "restart-broker", True, False),
                            ("elect-leaders", "elect-leaders", True, False)]
    assert steps[0].args.model_dump() == {"kind": "restart-broker", "broker": 3, "pod": "c-kafka-3"}


REFUSALS = [
    (ReplaceBrokerParams(broker=7), world(), "no broker 7 in this cluster; its brokers are 0, 1, 2, 3"),
    (ReplaceBrokerParams(broker=3), world(controllers=(3, 4)),
     "node 3 is also a KRaft controller: the controller quorum is static, and wiping a voter's disk can lose "
     "committed metadata. Use --keep-data (a new pod on the same disk), or replace a broker-only node"),
    (ReplaceBrokerParams(broker=3), world(brokers(4, racks="aabc")),
     "broker 3 is the last live broker of rack c (racks: a, b, c): draining it would leave that rack without "
     "replicas. Add a broker to rack c first, or use --keep-data"),
    (ReplaceBrokerParams(broker=2), world(brokers(3), parts=(part("t-0", (0, 1, 2)),)),
     "emptying broker(s) 2 leaves 2 live broker(s) (0, 1), too few for the replication factor of t-0 (RF 3). "
     "Add brokers first, or empty fewer"),
    (ReplaceBrokerParams(broker=3, throttle="0"), world(),
     'a throttle of "0" would never move anything: give a rate above 0, e.g. 50MiB/s'),
    (ReplaceBrokerParams(broker=3, throttle="fast"), world(),
     '"fast" is not a throttle rate: write bytes per second like 50MiB/s, 10MB/s or 52428800 (units B, KB, MB, '
     "GB, KiB, MiB, GiB)"),
    (ReplaceBrokerParams(broker=3), world(brokers(4, dead=(3,)), parts=(part("solo-0", (3,), leader=None),)),
     "broker 3 is down and holds the only replica of solo-0: replacing its disk would lose that data. Bring the "
     "broker back with --keep-data instead"),
]


@pytest.mark.parametrize(("params", "given", "message"), REFUSALS)
def test_each_refusal_says_what_is_wrong_and_what_is_valid(params: ReplaceBrokerParams, given: ReplaceBrokerInput,
                                                           message: str) -> None:
    with pytest.raises(PlanRefused) as refused:
        plan(params, given)
    assert str(refused.value) == message


@pytest.mark.parametrize(("text", "rate"), [("50MiB/s", 50 * MiB), ("10MB/s", 10_000_000), ("52428800", 52428800),
                                            ("1.5 GiB/s", 1610612736), ("100kb", 100_000)])
def test_throttle_rates_are_read_in_the_units_people_write(text: str, rate: int) -> None:
    assert parse_rate(text) == rate
