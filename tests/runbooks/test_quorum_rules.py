"""The KRaft quorum rules at their edges: a two-voter quorum, a leader that is not among the voters,
a voter exactly ``controller.quorum.fetch.timeout.ms`` behind, and the majority of five."""

from __future__ import annotations

from runbooks.rules.health import DEFAULT_FETCH_TIMEOUT_MS, QuorumInfo, can_roll_controller, quorum_health

from .builders import voter

AT = 100_000  # the leader's last caught-up time, ms


def test_a_two_voter_quorum_lets_either_voter_roll_while_the_other_is_caught_up() -> None:
    """Two voters: one caught-up other is enough (Strimzi's special case), for the leader and the follower."""
    quorum = QuorumInfo(leader_id=0, voters=(voter(0, AT), voter(1, AT - 10)))
    assert can_roll_controller(quorum, 1) == (True, "1 of the other 1 controllers are caught up")
    assert can_roll_controller(quorum, 0) == (True, "1 of the other 1 controllers are caught up")
    lagging = QuorumInfo(leader_id=0, voters=(voter(0, AT), voter(1, AT - 60_000)))
    assert can_roll_controller(lagging, 0) == (False, "only 0 of the other 1 controllers are caught up; 1 needed")


def test_a_leader_that_is_not_a_voter_cannot_vouch_for_anyone() -> None:
    """No catch-up time to compare with: rolling a controller is refused, and the quorum is not healthy."""
    quorum = QuorumInfo(leader_id=9, voters=(voter(0, AT), voter(1, AT), voter(2, AT)))
    assert can_roll_controller(quorum, 1) == (False, "the quorum leader reports no catch-up time")
    report = quorum_health(quorum)
    assert (report.ok, report.leader, report.caught_up) == (False, 9, 0)


def test_the_rules_say_why_in_words() -> None:
    """No leader, one voter: the reasons a human reads."""
    assert can_roll_controller(QuorumInfo(leader_id=None, voters=(voter(0, AT),)), 0) == (
        False, "the KRaft quorum has no leader")
    assert can_roll_controller(QuorumInfo(leader_id=0, voters=(voter(0, AT),)), 0) == (
        True, "single-voter quorum: restarting it stops the controller for a moment")
    report = quorum_health(QuorumInfo(leader_id=None, voters=(voter(0, AT), voter(1, AT))))
    assert (report.ok, report.leader, report.voters, report.caught_up, report.reason) == (
        False, None, 2, 0, "the KRaft quorum has no leader")


def test_a_voter_exactly_the_fetch_timeout_behind_is_not_caught_up() -> None:
    """Caught up means strictly less than controller.quorum.fetch.timeout.ms behind the leader."""
    edge = QuorumInfo(leader_id=0, voters=(voter(0, AT), voter(1, AT - DEFAULT_FETCH_TIMEOUT_MS),
                                           voter(2, AT - 60_000)))
    report = quorum_health(edge)
    assert (report.ok, report.leader, report.caught_up) == (False, 0, 1)
    assert report.reason == "only 1 of 3 controllers are caught up; 2 needed"
    inside = QuorumInfo(leader_id=0, voters=(voter(0, AT), voter(1, AT - DEFAULT_FETCH_TIMEOUT_MS + 1),
                                             voter(2, AT - 60_000)))
    report = quorum_health(inside)
    assert (report.ok, report.leader, report.caught_up) == (True, 0, 2)
    assert report.reason == "leader 0, 2 of 3 controllers caught up"


def test_five_voters_need_three_caught_up() -> None:
    """The majority of five is three: the leader and one follower are not enough."""
    voters = (voter(0, AT), voter(1, AT), voter(2, AT - 60_000), voter(3, AT - 60_000), voter(4, AT - 60_000))
    report = quorum_health(QuorumInfo(leader_id=0, voters=voters))
    assert (report.ok, report.caught_up) == (False, 2)
    three = (*voters[:2], voter(2, AT), *voters[3:])
    assert quorum_health(QuorumInfo(leader_id=0, voters=three)).ok
