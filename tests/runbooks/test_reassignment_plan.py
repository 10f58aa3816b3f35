"""The reassignment planner by example (``runbooks.rules.reassignment_plan``): each refusal, where the
preferred leader goes, bytes over counts, racks and fill shares. The batches, ETA and text are in
test_reassignment_batches.py; the general guarantees in test_reassignment_properties.py."""

from __future__ import annotations

import pytest

from runbooks.engine.models import PlanRefused
from runbooks.rules.reassignment import (
    PartitionMove,
    PartitionPlacement,
    ReassignmentBroker,
)
from runbooks.rules.reassignment_batches import batch_moves, plan_text

from .reassignment_builders import GiB, MiB, brokers, new_replicas, part, plan, round_robin

# --- refusals: each names what is wrong and what would be valid; nothing is planned ---------------

@pytest.mark.parametrize(("bs", "ps", "drain", "fill", "reason"), [
    (brokers(3), (part("t-0", (0, 1, 2)),), (2,), (),
     "leaves 2 live broker(s) (0, 1), too few for the replication factor of t-0 (RF 3)"),
    (brokers(4, racks="abcc"), (part("t-0", (0, 1, 2)),), (2,), (), None),  # another broker in rack c: fine
    (brokers(4, racks="abcd"), (part("t-0", (0, 1, 2)),), (2,), (), None),  # rack d is still unused by t-0
    ((*brokers(3, racks="abc"), ReassignmentBroker(id=3, rack="a")), (part("t-0", (0, 1, 2)),), (2,), (),
     "takes away the last live broker of rack(s) c: t-0 (3 racks now, 2 after) would span fewer racks"),
    (brokers(5, dead=(3,), racks="abcca"), (part("t-0", (0, 1, 2)),), (2,), (),
     "last live broker of rack(s) c"),  # the other broker of rack c is dead: it cannot take the replica
    (brokers(4), (part("t-0", (0, 1), leader=None),), (1,), (),
     "partition(s) offline (no live leader, so no replica to copy from): t-0"),
    (brokers(4, dead=(0, 1)), (part("t-0", (0, 1)), part("t-1", (2, 3))), (2,), (), "offline"),
    (brokers(4), (part("t-0", (0, 1)),), (9,), (), "unknown broker id(s) 9: the cluster's brokers are 0, 1, 2, 3"),
    (brokers(4), (part("t-0", (0, 7)),), (1,), (), "partition(s) with replicas on unknown brokers: t-0 on [0, 7]"),
    (brokers(3), (part("t-0", (0, 1)),), (0, 1, 2), (), "leaves no live broker to hold the replicas"),
    (brokers(3, dead=(2,)), (part("t-0", (0, 1)),), (0, 1), (), "leaves no live broker"),
    (brokers(4, dead=(3,)), (part("t-0", (0, 1)),), (), (3,), "broker(s) 3 are not alive"),
    (brokers(4), (part("t-0", (0, 1)),), (1,), (1,), "cannot be both emptied and filled"),
    (brokers(4), (part("t-0", (0, 1)),), (), (), "nothing to plan: name the brokers to empty (drain) or to fill"),
    ((*brokers(2, racks="ab"), ReassignmentBroker(id=2)), (part("t-0", (0, 1)),), (0,), (),
     "broker(s) 2 have no rack while broker(s) 0, 1 have one"),
    ((*brokers(3), ReassignmentBroker(id=1)), (part("t-0", (0, 1)),), (0,), (), "broker id(s) 1 appear more than once"),
    (brokers(3), (part("t-0", (0, 0)),), (2,), (), "two replicas on one broker: t-0 on [0, 0]"),
    (brokers(3), (part("t-0", (0, 1)), part("t-0", (1, 2))), (2,), (), "listed twice: t-0"),
    (brokers(3), (part("t-0", (0, 1), leader=2),), (2,), (), "led by a broker outside their replicas"),
])
def test_requests_no_plan_can_serve_are_refused_with_the_reason(
        bs: tuple[ReassignmentBroker, ...], ps: tuple[PartitionPlacement, ...], drain: tuple[int, ...],
        fill: tuple[int, ...], reason: str | None) -> None:
    if reason is None:
        assert plan(bs, ps, drain=drain, fill=fill).moves  # the neighbouring valid case plans
        return
    with pytest.raises(PlanRefused) as refused:
        plan(bs, ps, drain=drain, fill=fill)
    assert reason in str(refused.value)


def test_a_refusal_names_a_few_offenders_and_counts_the_rest() -> None:
    ps = tuple(part(f"t-{i}", (0, 1, 2), leader=None) for i in range(8))
    with pytest.raises(PlanRefused, match=r"t-0, t-1, t-2, t-3, t-4 and 3 more partitions"):
        plan(brokers(4), ps, drain=(0,))
    with pytest.raises(PlanRefused, match=r"offline \(no live leader, so no replica to copy from\): "
                                          r"t-0, t-1, t-2, t-3, t-4\. Bring"):
        plan(brokers(4), ps[:5], drain=(0,))
    with pytest.raises(PlanRefused, match=r"t-4 \(leader 2, replicas \[0, 1\]\) and 1 more partitions$"):
        plan(brokers(4), tuple(part(f"t-{i}", (0, 1), leader=2) for i in range(6)), drain=(0,))


@pytest.mark.parametrize(("replicas", "message"), [
    ((0, 0), "partition(s) with two replicas on one broker: u-0 on [0, 0], u-1 on [0, 0], u-2 on [0, 0], "
             "u-3 on [0, 0], u-4 on [0, 0] and 1 more partitions"),
    ((0, 9), "partition(s) with replicas on unknown brokers: u-0 on [0, 9], u-1 on [0, 9], u-2 on [0, 9], "
             "u-3 on [0, 9], u-4 on [0, 9] and 1 more partitions; the cluster's brokers are 0, 1, 2"),
])
def test_bad_partitions_are_refused_in_full(replicas: tuple[int, ...], message: str) -> None:
    ps = tuple(part(f"u-{i}", replicas) for i in range(6))
    with pytest.raises(PlanRefused) as refused:
        plan(brokers(3), ps, drain=(2,))
    assert str(refused.value) == message


def test_a_partition_on_an_unknown_broker_does_not_hide_the_checks_of_the_next() -> None:
    ps: tuple[PartitionPlacement, ...] = (part("t-0", (0, 9)), part("t-1", (0, 1)), part("t-1", (0, 1)))
    with pytest.raises(PlanRefused, match=r"^partition\(s\) listed twice: t-1$"):
        plan(brokers(3), ps, drain=(2,))
    ps = tuple(part(f"t-{i % 6}", (0, 1)) for i in range(12))
    with pytest.raises(PlanRefused, match=r"^partition\(s\) listed twice: t-0, t-1, t-2, t-3, t-4 and 1 more "
                                          r"partitions$"):
        plan(brokers(3), ps, drain=(2,))


@pytest.mark.parametrize(("bs", "ps", "drain", "message"), [
    (brokers(3), (part("t-0", (0, 1)),), (0, 1, 2),
     "emptying broker(s) 0, 1, 2 leaves no live broker to hold the replicas: empty fewer brokers, or add brokers "
     "first"),
    ((*brokers(2, racks="ab"), ReassignmentBroker(id=2)), (part("t-0", (0, 1)),), (0,),
     "broker(s) 2 have no rack while broker(s) 0, 1 have one: set broker.rack on every broker or on none, so that "
     "replicas can be spread over racks"),
    (brokers(3), (part("t-0", (0, 1, 2)),), (2,),
     "emptying broker(s) 2 leaves 2 live broker(s) (0, 1), too few for the replication factor of t-0 (RF 3). "
     "Add brokers first, or empty fewer"),
    ((*brokers(3, racks="abc"), ReassignmentBroker(id=3, rack="a")), (part("t-0", (0, 1, 2)),), (2,),
     "emptying broker(s) 2 takes away the last live broker of rack(s) c: t-0 (3 racks now, 2 after) would span "
     "fewer racks. Add a broker to that rack first, or empty fewer brokers"),
])
def test_drain_refusals_read_in_full(bs: tuple[ReassignmentBroker, ...], ps: tuple[PartitionPlacement, ...],
                                     drain: tuple[int, ...], message: str) -> None:
    with pytest.raises(PlanRefused) as refused:
        plan(bs, ps, drain=drain)
    assert str(refused.value) == message


# --- leaders --------------------------------------------------------------------------------------

def test_a_drained_follower_is_replaced_in_place_and_the_preferred_leader_stays() -> None:
    p = plan(brokers(4), (part("t-0", (0, 1, 2)),), drain=(1,))
    assert p.moves == (PartitionMove(topic="t", partition=0, old=(0, 1, 2), new=(0, 3, 2), leader=0,
                                     size_bytes=GiB),)
    assert p.preferred_leaders_changed == 0


def test_a_drained_preferred_leader_hands_first_place_to_the_surviving_current_leader() -> None:
    """The current leader (here not the preferred one) survives: it leads after the move, so no
    leadership lands on the replica that has just caught up."""
    p = plan(brokers(4), (part("t-0", (2, 0, 1), leader=0),), drain=(2,))
    assert new_replicas(p, "t-0") == (0, 3, 1)


def test_when_the_drained_broker_also_leads_now_the_survivor_leading_least_takes_its_place() -> None:
    ps = (part("t-0", (2, 0, 1)), part("t-1", (0, 3, 4)), part("t-2", (0, 4, 3)))
    p = plan(brokers(5), ps, drain=(2,))
    assert new_replicas(p, "t-0")[0] == 1  # broker 0 already leads t-1 and t-2
    assert set(new_replicas(p, "t-0")) == {1, 0, 3} or set(new_replicas(p, "t-0")) == {1, 0, 4}


def test_with_one_replica_the_new_replica_leads() -> None:
    p = plan(brokers(2), (part("t-0", (0,)),), drain=(0,))
    assert new_replicas(p, "t-0") == (1,)


def test_a_drained_dead_broker_is_copied_from_the_live_leader() -> None:
    p = plan(brokers(4, dead=(2,)), (part("t-0", (2, 0, 1), leader=0),), drain=(2,))
    assert p.moves[0].leader == 0 and new_replicas(p, "t-0") == (0, 3, 1)


def test_draining_spreads_preferred_leaders_evenly_over_the_survivors() -> None:
    p = plan(brokers(6), round_robin(6, 600), drain=(5,))
    leaders = [f.leaders_after for f in p.brokers if f.broker != 5]
    assert sum(leaders) == 600 and max(leaders) - min(leaders) <= 1


def test_a_new_broker_leads_its_share_of_the_partitions() -> None:
    bs = (*brokers(6), ReassignmentBroker(id=6))
    p = plan(bs, round_robin(6, 600), fill=(6,))
    assert abs(next(f for f in p.brokers if f.broker == 6).leaders_after - 600 / 7) <= 1


# --- minimal movement, bytes, racks ---------------------------------------------------------------

def test_draining_moves_the_drained_brokers_replicas_and_nothing_else() -> None:
    ps = round_robin(6, 300)
    p = plan(brokers(6), ps, drain=(4,))
    on_4 = [x.name for x in ps if 4 in x.replicas]
    assert [m.name for m in p.moves] == sorted(on_4, key=lambda n: int(n.split("-")[1]))
    assert p.replicas_moved == p.lower_bound_replicas == len(on_4) == 150  # P·R/N
    assert all(set(m.old) - {4} <= set(m.new) for m in p.moves)


def test_drained_bytes_are_spread_by_size_not_by_count() -> None:
    """One 90 GiB partition and nine of 10 GiB: counted, each broker would get three; by bytes the
    broker taking the big one takes nothing else, and the two others split the small ones. (The big
    one comes last in the request: the planner places the largest first, whatever the order.)"""
    ps = (*(part(f"small-{i}", (0,), size=10 * GiB) for i in range(9)), part("big-0", (0,), size=90 * GiB))
    p = plan(brokers(4), ps, drain=(0,))
    flows = {f.broker: f for f in p.brokers}
    big_to = new_replicas(p, "big-0")[0]
    assert flows[big_to].replicas_in == 1
    others = [flows[b].bytes_in for b in (1, 2, 3) if b != big_to]
    assert sorted(others) == [40 * GiB, 50 * GiB]


def test_replacing_a_broker_by_a_new_one_copies_each_replica_once_straight_to_it() -> None:
    bs = (*brokers(6), ReassignmentBroker(id=6))
    ps = round_robin(6, 600)
    p = plan(bs, ps, drain=(0,), fill=(6,))
    assert p.replicas_moved == p.lower_bound_replicas == 300
    assert all(m.adding == (6,) and m.removing == (0,) for m in p.moves)
    flows = {f.broker: f for f in p.brokers}
    assert flows[6].leaders_after == flows[0].leaders_before == 100  # the new broker leads what the old one led


def test_a_drained_replica_goes_to_the_rack_its_partition_lacks() -> None:
    ps = (part("t-0", (0, 2, 4)), part("t-1", (1, 3, 5)))
    p = plan(brokers(7, racks="aabbccc"), ps, drain=(4,))
    assert new_replicas(p, "t-0") in ((0, 2, 5), (0, 2, 6))


def test_without_a_new_rack_left_the_replica_still_moves_to_a_live_broker() -> None:
    """RF 3 over 2 racks: the partition spans both racks before and after."""
    p = plan(brokers(5, racks="aabbb"), (part("t-0", (0, 1, 2)),), drain=(1,))
    assert new_replicas(p, "t-0") in ((0, 3, 2), (0, 4, 2))


def test_filling_a_new_broker_moves_its_share_and_leaves_the_others_within_one() -> None:
    bs = (*brokers(6), ReassignmentBroker(id=6))
    p = plan(bs, round_robin(6, 600), fill=(6,))
    after = {f.broker: f.replicas_after for f in p.brokers}
    assert after[6] == 1800 // 7 == p.replicas_moved == p.lower_bound_replicas
    assert max(after.values()) - min(after.values()) <= 1
    assert all(f.replicas_in == 0 for f in p.brokers if f.broker != 6)
    assert len({m.name for m in p.moves}) == len(p.moves)  # one replica per partition


def test_filling_tracks_the_byte_share_when_sizes_differ() -> None:
    bs = (*brokers(6), ReassignmentBroker(id=6))
    ps = tuple(x.model_copy(update={"size_bytes": (i % 10 + 1) * GiB}) for i, x in enumerate(round_robin(6, 600)))
    p = plan(bs, ps, fill=(6,))
    share = sum(x.size_bytes * 3 for x in ps) / 7
    assert abs(next(f for f in p.brokers if f.broker == 6).bytes_after - share) <= 10 * GiB


def test_a_fill_move_never_narrows_a_partitions_rack_spread() -> None:
    """The new broker is in rack a; every partition already uses rack a, so only replicas on rack a
    may move to it."""
    bs = (*brokers(6, racks="aabbcc"), ReassignmentBroker(id=6, rack="a"))
    ps = tuple(part(f"t-{i}", (i % 2, 2 + i % 2, 4 + (i // 2) % 2)) for i in range(40))
    p = plan(bs, ps, fill=(6,))
    assert p.moves and all(m.removing[0] in (0, 1) for m in p.moves)


def test_with_racks_a_new_broker_gets_its_racks_share() -> None:
    """Every partition spans racks a, b and c; the new broker is in rack a, which keeps one replica
    of each partition whatever its brokers: the new broker's share is half of rack a's 4 replicas,
    not a quarter of all 12, and only broker 0 (rack a) gives to it."""
    bs = (*brokers(3, racks="abc"), ReassignmentBroker(id=3, rack="a"))
    ps = tuple(part(f"t-{i}", (0, 1, 2)) for i in range(4))
    p = plan(bs, ps, fill=(3,))
    assert p.replicas_moved == p.lower_bound_replicas == 2 and not p.shortfalls
    assert all(m.removing == (0,) and m.adding == (3,) for m in p.moves)
    assert [(f.broker, f.replicas_after, f.fair_share) for f in p.brokers] == [(0, 2, 2), (1, 4, 3), (2, 4, 3),
                                                                             (3, 2, 2)]


def test_a_new_rack_takes_its_share_from_every_rack() -> None:
    bs = (*brokers(3, racks="abc"), ReassignmentBroker(id=3, rack="d"))
    ps = tuple(part(f"t-{i}", (i % 3, (i + 1) % 3, (i + 2) % 3)) for i in range(12))
    p = plan(bs, ps, fill=(3,))
    assert next(f.replicas_after for f in p.brokers if f.broker == 3) == 36 // 4 == p.replicas_moved
    assert {m.removing[0] for m in p.moves} == {0, 1, 2}


def test_a_fill_broker_left_short_by_the_rack_rule_is_told_why() -> None:
    """Broker 2 (rack r0) is above its share, but every partition it still holds has a replica on
    dead broker 3, in the new broker's rack r2: moving broker 2's replica there would narrow the
    partition to two racks. The new broker gets 2 of its 3 and the plan says so."""
    racks = ["r3", "r3", "r0", "r2", "r4", "r2"]
    bs = tuple(ReassignmentBroker(id=b, rack=r, alive=b != 3) for b, r in enumerate(racks))
    layouts = [(4, 1, 3), (2, 1, 3), (2, 3, 4), (2, 1, 4), (2, 0, 4), (3, 0, 2), (2, 0, 3)]
    ps = tuple(part(f"t-{i}", r, leader=r[1] if r[0] == 3 else r[0]) for i, r in enumerate(layouts))
    p = plan(bs, ps, fill=(5,))
    assert [(m.name, m.new) for m in p.moves] == [("t-3", (5, 1, 4)), ("t-4", (5, 0, 4))]
    assert p.lower_bound_replicas == 3
    assert p.shortfalls == ("broker 5 gets 2 of the 3 replicas of its fair share: no other replica can move to it "
                            "without two replicas of a partition on one broker, a narrower rack spread, or taking a "
                            "broker below its own share",)


def test_a_shortfall_is_shown_to_the_approver() -> None:
    p = plan(brokers(4), (part("t-0", (0, 1)),), drain=(1,)).model_copy(update={"shortfalls": ("broker 3 gets 1",)})
    assert "Short of the fair share: broker 3 gets 1" in plan_text(p, batch_moves(p.moves), MiB)


