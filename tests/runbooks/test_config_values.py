"""Every value issue 18 lists, judged by the config planner before any approval (pure, fast).

Each refusal must carry Kafka's own wording (the same words a broker would log or return: the
JVM tests in tests/configmodel hold the judge to Kafka's classes) plus what is valid. A valid value
must still pass, on both supported versions.
"""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.catalogue.config import ConfigInput, ConfigParams, broker_validation, config_diff, plan_config_change
from runbooks.engine.models import PlanRefused
from runbooks.rules.config_checks import Effective, cross_problems
from runbooks.rules.config_keys import ConfigEntryInfo
from runbooks.rules.config_model import available, load_model
from runbooks.rules.health import ClusterSnapshot
from runbooks.rules.rolls import BrokerPodState

from .builders import part, snapshot

pytestmark = pytest.mark.timeout(20)
VERSIONS = available()
FULL = (0, 1, 2)
HEALTHY = snapshot(part("orders", 0, leader=0, replicas=FULL, isr=FULL), controller=1)


def catalogue(version: str, **values: str) -> dict[str, ConfigEntryInfo]:
    """What a broker of ``version`` reports in DescribeConfigs: every key of its model, at its default
    unless given (a Strimzi-like 3-broker cluster sets RF 3 and min ISR 2)."""
    model = load_model(version)
    given = {"default.replication.factor": "3", "min.insync.replicas": "2", **values}
    return {k: ConfigEntryInfo(name=k, value=given.get(k, spec.default), type=spec.type, read_only=not spec.dynamic,
                               source="STATIC_BROKER_CONFIG" if k in given else "DEFAULT_CONFIG")
            for k, spec in model.keys.items()}


def world(version: str = "4.3.1", *, brokers: int = 3, snap: ClusterSnapshot | None = HEALTHY,
          **overrides: Any) -> ConfigInput:
    values: dict[str, Any] = {
        "ready": True, "generation": 3, "kafka_version": version, "snapshot": snap,
        "brokers": tuple(BrokerPodState(id=i, pod=f"c-pool-{i}", uid=f"u{i}", kafka_version=version)
                         for i in range(brokers)),
        "spec_config": {},
    }
    values.update(overrides)
    if "catalogue" not in values:
        values["catalogue"] = catalogue(version)
    return ConfigInput(**values)


def refusal(values: dict[str, str], w: ConfigInput | None = None) -> str:
    with pytest.raises(PlanRefused) as caught:
        config_diff(ConfigParams(action="set", values=values), w or world())
    return str(caught.value)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("key", "value", "kafka_says"), [
    ("log.cleaner.min.cleanable.ratio", "5",
     "Invalid value 5.0 for configuration log.cleaner.min.cleanable.ratio: Value must be no more than 1 "
     "(valid: a finite number from 0 to 1. Default: 0.5)"),
    ("log.cleaner.min.cleanable.ratio", "-1",
     "Invalid value -1.0 for configuration log.cleaner.min.cleanable.ratio: Value must be at least 0"),
    ("log.cleaner.min.cleanable.ratio", "nan",
     "Invalid value nan for configuration log.cleaner.min.cleanable.ratio: Not a number of type DOUBLE"),
    ("log.cleaner.min.cleanable.ratio", "inf",
     "Invalid value inf for configuration log.cleaner.min.cleanable.ratio: Not a number of type DOUBLE"),
    ("log.cleaner.min.cleanable.ratio", "Infinity",
     "Invalid value Infinity for configuration log.cleaner.min.cleanable.ratio: Value must be no more than 1"),
    ("num.io.threads", "2147483648",
     "Invalid value 2147483648 for configuration num.io.threads: Not a number of type INT (valid: a whole number "
     "from 1 to 2147483647. Default: 8)"),
    ("num.network.threads", "2147483648",
     "Invalid value 2147483648 for configuration num.network.threads: Not a number of type INT"),
    ("log.retention.ms", "9223372036854775808",
     "Invalid value 9223372036854775808 for configuration log.retention.ms: Not a number of type LONG"),
    ("log.retention.ms", "-9223372036854775809",
     "Invalid value -9223372036854775809 for configuration log.retention.ms: Not a number of type LONG"),
    ("log.segment.bytes", "0", "Invalid value 0 for configuration log.segment.bytes: Value must be at least "),
    ("queued.max.requests", "0", "Invalid value 0 for configuration queued.max.requests: Value must be at least 1"),
    ("offsets.topic.replication.factor", "0",
     "Invalid value 0 for configuration offsets.topic.replication.factor: Value must be at least 1 (valid: a whole "
     "number from 1 to 32767. Default: 3)"),
    ("transaction.state.log.min.isr", "0",
     "Invalid value 0 for configuration transaction.state.log.min.isr: Value must be at least 1"),
    ("compression.type", "brotli", "Invalid value brotli for configuration compression.type: String must be one of: "
                                   "uncompressed, zstd, lz4, snappy, gzip, producer"),
    ("log.cleanup.policy", "Compact", "Invalid value Compact for configuration log.cleanup.policy: String must be one "
                                      "of: compact, delete"),
    ("auto.create.topics.enable", "yes",
     "Invalid value yes for configuration auto.create.topics.enable: Expected value to be either true or false"),
])
def test_values_kafka_refuses_are_refused_in_kafkas_words(version: str, key: str, value: str,
                                                          kafka_says: str) -> None:
    """The issue's values, and one of each validator kind: refused before any approval, in Kafka's words
    naming key and value, followed by what is valid and the default."""
    assert kafka_says in refusal({key: value}, world(version))


@pytest.mark.parametrize(("key", "value"), [
    ("log.cleaner.min.cleanable.ratio", "NaN"),
    ("log.cleaner.io.max.bytes.per.second", "-Infinity"),
    ("log.cleaner.io.max.bytes.per.second", "Infinity"),
    ("log.cleaner.io.max.bytes.per.second", "NaN"),
])
def test_nan_and_infinity_are_refused_although_kafka_takes_them(key: str, value: str) -> None:
    """Kafka's Range lets NaN through (no comparison holds) and an unbounded double takes Infinity: refused."""
    assert f"Invalid value {value} for configuration {key}: not a finite number" in refusal({key: value})


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("values", "written"), [
    ({"log.cleaner.min.cleanable.ratio": "0.6"}, {"log.cleaner.min.cleanable.ratio": 0.6}),
    ({"log.cleaner.min.cleanable.ratio": "1"}, {"log.cleaner.min.cleanable.ratio": 1.0}),
    ({"num.io.threads": "16"}, {"num.io.threads": 16}),
    ({"log.retention.ms": "86400000"}, {"log.retention.ms": 86400000}),
    ({"log.retention.ms": "-1"}, {"log.retention.ms": -1}),
    ({"log.segment.bytes": "1048576"}, {"log.segment.bytes": 1048576}),
    ({"compression.type": "zstd", "log.cleanup.policy": "compact, delete"},
     {"compression.type": "zstd", "log.cleanup.policy": "compact,delete"}),
    ({"auto.create.topics.enable": "FALSE"}, {"auto.create.topics.enable": False}),
    ({"offsets.topic.replication.factor": "3", "transaction.state.log.min.isr": "2"},
     {"offsets.topic.replication.factor": 3, "transaction.state.log.min.isr": 2}),
    ({"replica.fetch.wait.max.ms": "1000"}, {"replica.fetch.wait.max.ms": 1000}),
])
def test_valid_values_are_accepted_and_written_with_their_type(version: str, values: dict[str, str],
                                                               written: dict[str, Any]) -> None:
    """Valid values pass on every supported version, written with YAML's types as Kafka parses them."""
    changes = config_diff(ConfigParams(action="set", values=values), world(version))
    assert {c.key: c.after for c in changes} == written


# Kafka's verdicts where the 3.x lines (Strimzi 0.45's, ZooKeeper or KRaft) and 4.x differ, as the jars
# of 3.8.1, 3.9.0 and 4.3.1 give them (tests/configmodel asks those classes where their jars are fetched).
_OWN_RULES = [
    ("4.3.1", "log.segment.bytes", "14", "Invalid value 14 for configuration log.segment.bytes: Value must be at "
                                         "least 1048576 (valid: a whole number from 1048576 to 2147483647."),
    ("3.9.0", "log.segment.bytes", "14", 14),
    ("3.9.0", "log.segment.bytes", "0", "Invalid value 0 for configuration log.segment.bytes: Value must be at least "
                                        "14 (valid: a whole number from 14 to 2147483647. Default: 1073741824)"),
    ("4.3.1", "log.cleanup.policy", "compact,compact", "Configuration 'log.cleanup.policy' values must not be "
                                                       "duplicated."),
    ("4.3.1", "log.cleanup.policy", "compact,,delete", "Configuration 'log.cleanup.policy' values must not be empty."),
    ("3.8.1", "log.cleanup.policy", "compact,compact", "compact,compact"),
    ("3.9.0", "log.cleanup.policy", "compact,compact", "compact,compact"),
    ("3.9.0", "log.cleanup.policy", "compact,,delete", "Invalid value  for configuration log.cleanup.policy: String "
                                                       "must be one of: compact, delete (valid: a comma-separated list "
                                                       "of compact, delete. Default: delete)"),
]


@pytest.mark.parametrize(("version", "key", "value", "verdict"), _OWN_RULES)
def test_each_kafka_version_judges_with_its_own_rules(version: str, key: str, value: str, verdict: Any) -> None:
    """A value is judged by the rules of the Kafka the cluster runs: 4.0 raised log.segment.bytes' minimum from
    14 to 1 MiB, and 3.x's list validator checks only each entry (duplicates pass), 4.x's also refuses
    duplicates and empty entries. A str verdict that is not the written value is Kafka's refusal."""
    values = {key: value}
    if isinstance(verdict, str) and " " in verdict:
        assert verdict in refusal(values, world(version))
    else:
        changes = config_diff(ConfigParams(action="set", values=values), world(version))
        assert {c.key: c.after for c in changes} == {key: verdict}


def test_a_zookeeper_era_patch_release_is_judged_by_its_lines_model() -> None:
    """3.8.0 (Strimzi 0.45) has no model of its own: 3.8.1's rules judge it, and the diff says so."""
    steps = plan_config_change(ConfigParams(action="set", values={"num.io.threads": "12"}),
                               world("3.8.0", catalogue=catalogue("3.8.1")))
    assert "values judged with the config rules of Kafka 3.8.1" in steps[1].summary


# -- rules across keys, on the config the brokers would end up with ---------------------------------

@pytest.mark.parametrize(("values", "says"), [
    ({"offsets.topic.replication.factor": "4"},
     "offsets.topic.replication.factor=4 is more than the 3 brokers: the internal topic is never created"),
    ({"transaction.state.log.replication.factor": "5"}, "transaction.state.log.replication.factor=5 is more than "
                                                         "the 3 brokers"),
    ({"default.replication.factor": "4"}, "default.replication.factor=4 is more than the 3 brokers"),
    ({"transaction.state.log.min.isr": "4"},
     "transaction.state.log.min.isr=4 is more than transaction.state.log.replication.factor=3"),
    ({"transaction.state.log.replication.factor": "1"},
     "transaction.state.log.min.isr=2 is more than transaction.state.log.replication.factor=1: the transaction "
     "state topic is written with acks=all"),
    ({"min.insync.replicas": "3", "offsets.topic.replication.factor": "2"},
     "min.insync.replicas=3 is more than offsets.topic.replication.factor=2"),
    ({"replica.fetch.wait.max.ms": "40000"},
     "the brokers would not start: replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms "
     "to prevent unnecessary socket timeouts (replica.fetch.wait.max.ms=40000 (this change); "
     "replica.socket.timeout.ms=30000 (the brokers now))"),
    ({"replica.fetch.wait.max.ms": "31000", "replica.socket.timeout.ms": "40000"},
     "replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms to prevent "
     "frequent changes in ISR"),
    ({"replica.lag.time.max.ms": "400"},
     "replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms"),
    ({"log.retention.ms": "0"}, "log.retention.ms must be unlimited (-1) or, greater than or equal to 1"),
    ({"log.retention.hours": "0"}, "log.retention.ms must be unlimited (-1) or, greater than or equal to 1"),
    ({"log.roll.ms": "0"}, "log.roll.ms must be greater than or equal to 1"),
    ({"log.cleaner.threads": "0"}, "ArithmeticException: / by zero"),
    ({"log.cleaner.dedupe.buffer.size": "1048576"},
     "log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread."),
    ({"queued.max.request.bytes": "1000"},
     "queued.max.request.bytes must be larger or equal to socket.request.max.bytes"),
    ({"max.connections.per.ip": "0"},
     "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set."),
    ({"connection.failed.authentication.delay.ms": "600000"},
     "connection.failed.authentication.delay.ms=600000 should always be less than connections.max.idle.ms=600000"),
    ({"group.consumer.heartbeat.interval.ms": "50000"},
     "group.consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"),
    ({"group.consumer.session.timeout.ms": "5000"},
     "group.consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"),
    ({"min.insync.replicas": "4"}, "min.insync.replicas=4 is more than 3, the smallest replication factor"),
    ({"log.retention.ms": "-5"}, "log.retention.ms=-5: Kafka reads any negative value as unlimited; write -1"),
    ({"message.max.bytes": "0"}, "message.max.bytes=0: the brokers would refuse every record batch"),
])
def test_rules_across_keys_refuse_what_breaks_the_resulting_config(values: dict[str, str], says: str) -> None:
    """Start-time requires of KafkaConfig (Kafka's words, with each value and where it comes from) and the
    bot's rules for internal topics and min ISR, judged on change + spec + brokers' values + defaults."""
    assert says in refusal(values)


@pytest.mark.parametrize(("version", "values", "says"), [
    ("3.8.1", {"offsets.commit.required.acks": "4"},
     "the brokers would not start: offsets.commit.required.acks must be greater or equal -1 and less or equal to "
     "offsets.topic.replication.factor (offsets.commit.required.acks=4 (this change); "
     "offsets.topic.replication.factor=3 (the brokers now))"),
    ("3.9.0", {"offsets.commit.required.acks": "-2"},
     "offsets.commit.required.acks must be greater or equal to -1 and less or equal to "
     "offsets.topic.replication.factor"),
    ("3.9.0", {"group.consumer.session.timeout.ms": "5000"},
     "group.consumer.session.timeout.ms must be greater than or equals to group.consumer.min.session.timeout.ms"),
    ("3.9.0", {"group.share.heartbeat.interval.ms": "50000"},
     "group.share.heartbeat.interval.ms must be less than or equals to group.share.max.heartbeat.interval.ms"),
    ("4.3.1", {"group.consumer.max.heartbeat.interval.ms": "60000", "group.consumer.heartbeat.interval.ms": "45000"},
     "group.consumer.heartbeat.interval.ms must be less than group.consumer.session.timeout.ms"),
    ("3.9.0", {"group.consumer.max.heartbeat.interval.ms": "60000", "group.consumer.heartbeat.interval.ms": "45000"},
     None),
    ("3.8.1", {"group.consumer.max.heartbeat.interval.ms": "60000", "group.consumer.heartbeat.interval.ms": "45000"},
     None),
])
def test_start_rules_are_those_of_the_clusters_kafka(version: str, values: dict[str, str], says: str | None) -> None:
    """Each release checks its own cross-key rules at start, in its own words: 3.x checks
    offsets.commit.required.acks (4.0 removed the key) and words the group checks "equals to"; 4.x also
    requires heartbeat < session, which a 3.x broker starts without (so the bot takes it there)."""
    if says is None:
        changes = config_diff(ConfigParams(action="set", values=values), world(version))
        assert {c.key for c in changes} == set(values)
    else:
        assert says in refusal(values, world(version))


def test_a_change_that_fixes_both_keys_at_once_passes() -> None:
    """Rules read the resulting config: raising the socket timeout with the fetch wait is fine."""
    changes = config_diff(ConfigParams(action="set", values={
        "replica.fetch.wait.max.ms": "29000", "replica.socket.timeout.ms": "40000"}), world())
    assert sorted(c.key for c in changes) == ["replica.fetch.wait.max.ms", "replica.socket.timeout.ms"]


def test_spec_values_count_in_the_resulting_config() -> None:
    """spec.kafka.config already raising the socket timeout makes a higher fetch wait valid."""
    spec = world(spec_config={"replica.socket.timeout.ms": 60000, "replica.lag.time.max.ms": 60000})
    assert [c.key for c in config_diff(ConfigParams(action="set", values={"replica.fetch.wait.max.ms": "45000"}),
                                       spec)] == ["replica.fetch.wait.max.ms"]


def test_unsetting_a_key_judges_kafkas_default_in_its_place() -> None:
    """Unsetting replica.socket.timeout.ms brings back its default 30000, below the fetch wait in spec."""
    spec = world(spec_config={"replica.socket.timeout.ms": 60000, "replica.lag.time.max.ms": 60000,
                              "replica.fetch.wait.max.ms": 45000})
    with pytest.raises(PlanRefused) as caught:
        config_diff(ConfigParams(action="unset", keys=("replica.socket.timeout.ms",)), spec)
    assert ("replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms" in str(caught.value)
            and "replica.socket.timeout.ms=30000 (Kafka's default, once unset)" in str(caught.value))


def test_a_problem_the_cluster_already_has_is_not_this_changes_to_refuse() -> None:
    """Only rules involving a changed key are judged: an unrelated change on a cluster whose offsets RF already
    exceeds its brokers still passes."""
    w = world(brokers=2, catalogue=catalogue("4.3.1", **{"default.replication.factor": "2"}))
    assert [c.key for c in config_diff(ConfigParams(action="set", values={"log.retention.ms": "1000"}), w)] == [
        "log.retention.ms"]


# -- class-valued and plugin keys -------------------------------------------------------------------

PLUGIN_KEYS = ["metric.reporters", "principal.builder.class", "replica.selector.class",
               "create.topic.policy.class.name", "alter.config.policy.class.name", "client.quota.callback.class",
               "config.providers", "kafka.metrics.reporters", "group.consumer.assignors",
               "remote.log.storage.manager.class.name"]


@pytest.mark.parametrize("key", PLUGIN_KEYS)
def test_plugin_keys_are_refused_unless_the_cluster_allows_them(key: str) -> None:
    """Any value of a class-valued or plugin key is refused, saying how to allow it, when not allowed by name."""
    reason = refusal({key: "com.example.Plugin"})
    assert f"{key} names a class the brokers load at start" in reason
    assert f"allowed_class_keys: [{key}]" in reason


@pytest.mark.parametrize(("key", "value", "says"), [
    ("metric.reporters", "hello world",
     "Invalid value hello world for configuration metric.reporters: hello world is not a Java class name"),
    ("principal.builder.class", "hello world",
     "Invalid value hello world for configuration principal.builder.class: Class hello world could not be found."),
    ("replica.selector.class", "junk",
     "Invalid value junk for configuration replica.selector.class: junk is not a Java class name"),
])
def test_allowed_plugin_keys_still_refuse_what_is_no_class_name(key: str, value: str, says: str) -> None:
    """Allowing a key lets class names through, not arbitrary text."""
    assert says in refusal({key: value}, world(allowed_class_keys=frozenset({key})))


def test_an_allowed_plugin_key_takes_a_class_name_and_is_asked_of_the_brokers() -> None:
    """metric.reporters, allowed, takes class names; it applies live, so the brokers are asked to judge it."""
    w = world(allowed_class_keys=frozenset({"metric.reporters"}))
    params = ConfigParams(action="set", values={"metric.reporters": "org.apache.kafka.common.metrics.JmxReporter,"
                                                                    "com.example.Reporter"})
    assert [c.after for c in config_diff(params, w)] == [
        "org.apache.kafka.common.metrics.JmxReporter,com.example.Reporter"]
    assert broker_validation(params, w) == {
        "metric.reporters": "org.apache.kafka.common.metrics.JmxReporter,com.example.Reporter"}


def test_only_keys_kafka_applies_live_are_asked_of_the_brokers() -> None:
    """validate_only is for live updates: a start-up key (queued.max.requests) is not sent, a live one is."""
    params = ConfigParams(action="set", values={"queued.max.requests": "600", "num.io.threads": "12"})
    assert broker_validation(params, world()) == {"num.io.threads": "12"}


def test_a_huge_value_is_not_echoed_whole() -> None:
    """A pasted blob is refused quoting its start and its length, not all of it."""
    reason = refusal({"compression.type": "x" * 100_000})
    assert "Invalid value " + "x" * 59 + "… (100,000 characters) for configuration compression.type" in reason
    assert len(reason) < 1000
    digits = refusal({"num.io.threads": "9" * 5000})
    assert "… (5,000 characters) for configuration num.io.threads: Not a number of type INT" in digits


def test_a_secret_key_is_never_taken_from_chat() -> None:
    """delegation.token.secret.key (PASSWORD, not under a denied prefix) would be echoed and stored in clear."""
    reason = refusal({"delegation.token.secret.key": "hunter2"})
    assert "delegation.token.secret.key is a secret (PASSWORD)" in reason and "hunter2" not in reason


# -- which model judges which cluster -----------------------------------------------------------------

def test_a_patch_release_without_a_model_is_judged_by_its_lines_model_and_says_so() -> None:
    """4.3.0 has no model: 4.3.1's rules judge it (same minor line), and the plan's diff notes it."""
    steps = plan_config_change(ConfigParams(action="set", values={"num.io.threads": "12"}),
                               world("4.3.0", catalogue=catalogue("4.3.1")))
    assert "values judged with the config rules of Kafka 4.3.1" in steps[1].summary
    assert "Value must be no more than 1" in refusal({"log.cleaner.min.cleanable.ratio": "5"},
                                                     world("4.3.0", catalogue=catalogue("4.3.1")))


@pytest.mark.parametrize(("version", "says"), [
    ("4.4.0", "the bot has no config model for Kafka 4.4.0 (it has 3.8.1, 3.9.0, 4.2.2, 4.3.1)"),
    ("3.7.0", "the bot has no config model for Kafka 3.7.0"),
    (None, "the Kafka resource reports no Kafka version yet"),
])
def test_a_release_line_without_a_model_is_refused(version: str | None, says: str) -> None:
    """Another line's rules could pass a value these brokers refuse: no model, no change."""
    assert says in refusal({"num.io.threads": "12"}, world("4.3.1", kafka_version=version))



def test_kafkas_heartbeat_rule_is_kept_for_the_resulting_config() -> None:
    """Kafka's own require (heartbeat at most half the session) stays among the rules across keys,
    though the bot refuses to set either key (Strimzi drops broker.* keys): judged directly."""
    model = load_model("4.3.1")
    eff = Effective(model, spec={}, reported={}, change={"broker.heartbeat.interval.ms": "5000"})
    assert cross_problems(model, eff, ["broker.heartbeat.interval.ms"], brokers=3) == [
        "broker.heartbeat.interval.ms (5000 ms) must be less than or equal to half of the broker.session.timeout.ms "
        "(9000 ms): Kafka starts anyway and logs this as an error, and a broker that misses its session loses its "
        "lease and is fenced (broker.heartbeat.interval.ms=5000 (this change); broker.session.timeout.ms=9000 "
        "(Kafka's default))"]
