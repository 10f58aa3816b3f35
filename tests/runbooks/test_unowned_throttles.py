"""The pure rule for replication throttles no run owns: which runs own them, what is listed, and the
exact ``kafka-configs.sh`` lines that clear them (only the keys set, loops for entities alike)."""

from __future__ import annotations

import pytest

from runbooks.rules.unowned_throttles import (
    FOLLOWER_RATE,
    FOLLOWER_REPLICAS,
    LEADER_RATE,
    LEADER_REPLICAS,
    REPLICA_MOVING_RUNBOOKS,
    TOPICS_PER_COMMAND,
    ThrottlesSeen,
    rate_text,
    throttled_replica_count,
    unowned_throttles,
)

pytestmark = pytest.mark.timeout(10)

MIB50 = str(50 * 1024 * 1024)
BOTH_RATES = {LEADER_RATE: MIB50, FOLLOWER_RATE: MIB50}
TOOL = "kafka-configs.sh --bootstrap-server boot:9092"
SEEN = ThrottlesSeen(brokers={1: BOTH_RATES},
                     topics={"orders": {LEADER_REPLICAS: "0:0,0:1", FOLLOWER_REPLICAS: "0:2"}})


def test_the_runbooks_that_own_throttles_are_replace_broker_and_scale() -> None:
    """The set is the two runbooks that move replicas, named once."""
    assert {"replace-broker", "scale"} == REPLICA_MOVING_RUNBOOKS


@pytest.mark.parametrize("runbook", sorted(REPLICA_MOVING_RUNBOOKS))
def test_an_active_run_that_moves_replicas_owns_the_throttles(runbook: str) -> None:
    """A replace-broker or scale run on the cluster: its throttles, nothing to report."""
    assert unowned_throttles(SEEN, ["restart", runbook], "boot:9092") is None


@pytest.mark.parametrize("runbooks", [[], ["restart"], ["upgrade", "config"]])
def test_throttles_with_no_moving_run_are_unowned(runbooks: list[str]) -> None:
    """No run, or only runs that never throttle (a rolling restart, an upgrade): unowned."""
    found = unowned_throttles(SEEN, runbooks, "boot:9092")
    assert found is not None and (found.broker_count, found.topic_count) == (1, 1)


def test_no_throttle_anywhere_is_nothing_to_report() -> None:
    """Nothing set: nothing to say, with or without a run."""
    assert ThrottlesSeen().empty
    assert unowned_throttles(ThrottlesSeen(), [], "boot:9092") is None


def test_a_cluster_wide_default_alone_is_a_throttle() -> None:
    """The default rate set with --entity-default, on no broker of its own: still reported."""
    found = unowned_throttles(ThrottlesSeen(default_rates={FOLLOWER_RATE: "1048576"}), [], "boot:9092")
    assert found is not None
    assert found.commands == (f"{TOOL} --entity-type brokers --entity-default --alter --delete-config "
                              "follower.replication.throttled.rate",)


def test_rates_read_in_binary_units() -> None:
    assert [rate_text(v) for v in (MIB50, "1048576000", "10000", str(2**63 - 1), "lots")] == [
        "50 MiB/s", "1000 MiB/s", "9.8 KiB/s", "unlimited", "lots"]


def test_throttled_replicas_are_counted_once_over_both_lists_and_star_is_all() -> None:
    assert throttled_replica_count({LEADER_REPLICAS: "0:0,0:1", FOLLOWER_REPLICAS: "0:1,0:2"}) == 3
    assert throttled_replica_count({LEADER_REPLICAS: "*"}) is None


def test_the_summary_and_commands_word_for_word() -> None:
    """Brokers grouped by equal rates, the default on the brokers that inherit it (not deleted on
    them one by one), topics with their counts; each command deletes only the keys set there."""
    default = {LEADER_RATE: "1048576000", FOLLOWER_RATE: "1048576000"}
    seen = ThrottlesSeen(
        brokers={0: BOTH_RATES, 1: BOTH_RATES, 2: {LEADER_RATE: "1048576000", FOLLOWER_RATE: "10485760"}, 3: default},
        default_rates=default,
        topics={"orders": {LEADER_REPLICAS: "0:0,0:1", FOLLOWER_REPLICAS: "0:2"}, "payments": {LEADER_REPLICAS: "*"},
                "audit": {FOLLOWER_REPLICAS: "3:1"}})
    found = unowned_throttles(seen, [], "boot:9092")
    assert found is not None
    assert found.summary == (
        "Broker rates: brokers 0, 1: leader 50 MiB/s, follower 50 MiB/s; broker 2: follower 10 MiB/s",
        "Cluster-wide default rate (in effect on brokers 2, 3): leader 1000 MiB/s, follower 1000 MiB/s",
        "Topics with throttled replicas: audit (1 throttled replica), orders (3 throttled replicas), "
        "payments (all replicas)",
    )
    assert found.commands == (
        f'for id in 0 1; do {TOOL} --entity-type brokers --entity-name "$id" --alter --delete-config '
        "leader.replication.throttled.rate,follower.replication.throttled.rate; done",
        f"{TOOL} --entity-type brokers --entity-name 2 --alter --delete-config follower.replication.throttled.rate",
        f"{TOOL} --entity-type brokers --entity-default --alter --delete-config "
        "leader.replication.throttled.rate,follower.replication.throttled.rate",
        f"{TOOL} --entity-type topics --entity-name audit --alter --delete-config "
        "follower.replication.throttled.replicas",
        f"{TOOL} --entity-type topics --entity-name orders --alter --delete-config "
        "leader.replication.throttled.replicas,follower.replication.throttled.replicas",
        f"{TOOL} --entity-type topics --entity-name payments --alter --delete-config "
        "leader.replication.throttled.replicas",
    )


def test_many_topics_are_condensed_into_loops_of_bounded_length() -> None:
    """Fifty topics with both lists: one loop over the first forty, and the rest counted (the alert
    lists them once these are cleared), so the message stays within what Slack shows."""
    lists = {LEADER_REPLICAS: "0:1", FOLLOWER_REPLICAS: "0:2"}
    names = [f"t{i:02d}" for i in range(50)]
    found = unowned_throttles(ThrottlesSeen(topics=dict.fromkeys(names, lists)), [], "boot:9092")
    assert found is not None
    loop, rest = found.commands
    assert loop == (f"for t in {' '.join(names[:TOPICS_PER_COMMAND])}; do {TOOL} --entity-type topics "
                    '--entity-name "$t" --alter --delete-config '
                    "leader.replication.throttled.replicas,follower.replication.throttled.replicas; done")
    assert rest == "# and 10 more topics: this alert lists them once these are cleared"
    assert found.summary == ("Topics with throttled replicas: " + ", ".join(f"{n} (2 throttled replicas)"
                                                                            for n in names[:10]) + " and 40 more",)
    assert sum(len(line) for line in (*found.summary, *found.commands)) < 2500
