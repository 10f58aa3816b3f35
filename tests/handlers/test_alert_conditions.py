"""Observations from what the monitors read: brokers down, under-replication grouped per broker
(with the reassignment correction), min ISR, offline, quorum, pods, the Kafka resource, Strimzi
restart events and consumer lag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.alerting.conditions import (
    PodSeen,
    RestartEvent,
    health_observations,
    kafka_observations,
    lag_observations,
    pod_observations,
    restart_observations,
)
from handlers.alerting.lag_models import GroupLag, PartitionLag, SecondsFrom
from handlers.ports import BrokerPod, KafkaResourceStatus
from runbooks.alerting.lifecycle import Condition, LagRule
from runbooks.rules.health import BrokerInfo, ClusterSnapshot, PartitionInfo, QuorumInfo, QuorumVoter

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def snapshot(partitions: list[PartitionInfo], *, fenced: tuple[int, ...] = (), brokers: tuple[int, ...] = (0, 1, 2),
             quorum: QuorumInfo | None = None) -> ClusterSnapshot:
    return ClusterSnapshot(taken_at=NOW, brokers=tuple(BrokerInfo(id=b, fenced=b in fenced) for b in brokers),
                           partitions=tuple(partitions), min_isr={"t": 2}, quorum=quorum)


def p(n: int, replicas: tuple[int, ...], isr: tuple[int, ...], leader: int | None = 0,
      adding: tuple[int, ...] = ()) -> PartitionInfo:
    return PartitionInfo(topic="t", partition=n, leader=leader, replicas=replicas, isr=isr, adding=adding)


def by_condition(observations: list) -> dict[tuple[Condition, str], float]:  # type: ignore[type-arg]
    return {(o.key.condition, o.key.subject): o.value for o in observations}


def test_a_healthy_cluster_observes_nothing() -> None:
    """Every broker live, every ISR full: no observation."""
    snap = snapshot([p(0, (0, 1, 2), (0, 1, 2)), p(1, (1, 2, 0), (1, 2, 0), leader=1)])
    assert health_observations("prod", snap, [0, 1, 2]) == []


def test_under_replication_is_one_alert_per_missing_broker_with_its_restart_offer() -> None:
    """Two partitions missing broker 2 make one alert on broker-2 whose next action restarts it."""
    snap = snapshot([p(0, (0, 1, 2), (0, 1)), p(1, (2, 0, 1), (0, 1), leader=0), p(2, (0, 1, 2), (0, 1, 2))],
                    fenced=(2,))
    found = health_observations("prod", snap, [0, 1, 2])
    assert by_condition(found) == {(Condition.BROKER_DOWN, "broker-2"): 1,
                                   (Condition.UNDER_REPLICATED, "broker-2"): 2}
    urp = next(o for o in found if o.key.condition is Condition.UNDER_REPLICATED)
    assert urp.facts["next_command"] == "/kafka restart prod --brokers 2"
    assert "t-0, t-1" in urp.detail


def test_a_replica_being_added_by_a_reassignment_is_not_missing() -> None:
    """RF is |replicas| - |adding| while a reassignment runs: the new replica catching up is not URP."""
    snap = snapshot([p(0, (0, 1, 2, 3), (0, 1, 2), adding=(3,))], brokers=(0, 1, 2, 3))
    assert health_observations("prod", snap, [0, 1, 2, 3]) == []


def test_a_broker_with_a_pod_but_no_registration_is_down() -> None:
    """Kafka does not list broker 2 although its pod exists."""
    snap = snapshot([p(0, (0, 1), (0, 1))], brokers=(0, 1))
    assert by_condition(health_observations("prod", snap, [0, 1, 2])) == {(Condition.BROKER_DOWN, "broker-2"): 1}


def test_min_isr_and_offline_are_counted_cluster_wide() -> None:
    """A leaderless partition is offline and under min ISR; an ISR of one under min ISR 2 too."""
    snap = snapshot([p(0, (0, 1), (0,)), p(1, (1, 2), (), leader=None)])
    found = by_condition(health_observations("prod", snap, [0, 1, 2]))
    assert found[(Condition.UNDER_MIN_ISR, "partitions")] == 2
    assert found[(Condition.OFFLINE_PARTITIONS, "partitions")] == 1


def test_a_quorum_without_leader_is_observed() -> None:
    """No KRaft leader: the quorum alert."""
    snap = snapshot([], quorum=QuorumInfo(leader_id=None, voters=(QuorumVoter(id=0), QuorumVoter(id=1))))
    assert (Condition.QUORUM, "controller-quorum") in by_condition(health_observations("prod", snap, [0, 1, 2]))


def test_pods_down_after_a_crash_are_observed_but_not_pods_being_replaced() -> None:
    """CrashLoopBackOff or not Ready after restarts: crashing; terminating (the operator's roll): not."""
    pods = [
        BrokerPod(node_id=0, name="prod-kafka-0", uid="a", ready=True),
        BrokerPod(node_id=1, name="prod-kafka-1", uid="b", ready=False, restart_count=3,
                  waiting_reason="CrashLoopBackOff"),
        BrokerPod(node_id=2, name="prod-kafka-2", uid="c", ready=False, restart_count=1, terminating=True),
    ]
    found = pod_observations("prod", pods)
    assert [(o.key.subject, o.value) for o in found] == [("prod-kafka-1", 3)]
    assert "CrashLoopBackOff" in found[0].detail


def test_kafka_resource_not_ready_and_warnings() -> None:
    """NotReady (unless paused on purpose) and one alert per warning reason."""
    status = KafkaResourceStatus(ready=False, reason="KafkaUpgradeError", message="boom",
                                 warnings=("KafkaStorage: disk full soon", "UnusedConfig: x"))
    found = kafka_observations("prod", "prod", status)
    assert {(o.key.condition, o.key.subject) for o in found} == {
        (Condition.KAFKA_NOT_READY, "kafka/prod"), (Condition.KAFKA_WARNING, "KafkaStorage"),
        (Condition.KAFKA_WARNING, "UnusedConfig")}
    assert kafka_observations("prod", "prod", KafkaResourceStatus(ready=False, paused=True)) == []


def test_a_restart_lasts_until_a_pod_created_after_the_event_is_ready() -> None:
    """The event starts it; the old pod Ready does not end it; the new pod Ready does; old events stay quiet."""
    event = RestartEvent(pod="prod-kafka-1", reason="ManualRollingUpdate", note="annotated", at=NOW)
    old_pod = {"prod-kafka-1": PodSeen(ready=True, created_at=NOW - timedelta(hours=1))}
    new_pod_starting = {"prod-kafka-1": PodSeen(ready=False, created_at=NOW + timedelta(seconds=2))}
    new_pod_ready = {"prod-kafka-1": PodSeen(ready=True, created_at=NOW + timedelta(seconds=2))}
    assert len(restart_observations("prod", [event], old_pod, NOW)) == 1
    assert len(restart_observations("prod", [event], new_pod_starting, NOW + timedelta(seconds=5))) == 1
    assert restart_observations("prod", [event], new_pod_ready, NOW + timedelta(seconds=9)) == []
    assert restart_observations("prod", [event], old_pod, NOW + timedelta(hours=1)) == []  # a re-listed old event


def group(name: str, lags: list[tuple[int, float | None]], *, error: str | None = None) -> GroupLag:
    return GroupLag(group=name, state="Empty", error=error, partitions=tuple(
        PartitionLag(topic="t", partition=i, committed=0, end=lag, lag=lag, seconds=seconds,
                     seconds_from=SecondsFrom.TABLE if seconds is not None else SecondsFrom.UNKNOWN)
        for i, (lag, seconds) in enumerate(lags)))


def test_lag_alerts_on_records_or_seconds_or_growth_and_never_on_unread_groups() -> None:
    """Worst partition over either threshold, or a spike; a group that could not be read is skipped."""
    rule = LagRule(max_lag=1000, max_lag_seconds=60)
    groups = [group("records", [(5000, 10.0)]), group("seconds", [(10, 120.0)]), group("fine", [(10, 5.0)]),
              group("spiky", [(10, 5.0)]), group("broken", [], error="coordinator moved"),
              group("no-seconds", [(500, None)])]
    found = lag_observations("prod", groups, rule, grew={"spiky": True, "broken": True})
    assert {o.key.subject: o.value for o in found} == {"group:records": 10.0, "group:seconds": 120.0,
                                                       "group:spiky": 5.0}
    seconds = next(o for o in found if o.key.subject == "group:seconds")
    assert seconds.facts["next_command"] == "/kafka lag prod seconds" and "≥ 60 s" in seconds.detail


def test_a_lag_alert_without_a_known_time_uses_records() -> None:
    """No seconds known yet: the alert's value is the record count."""
    found = lag_observations("prod", [group("g", [(5000, None)])], LagRule(max_lag=1000), grew={})
    assert found[0].value == 5000 and found[0].facts["unit"] == "records"
