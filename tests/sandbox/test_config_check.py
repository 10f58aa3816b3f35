"""The sandbox operator's config check: Kafka's own classes judge a node's properties (no broker runs).

Each case is one node config = a valid dual-role base + one key; the verdict is what a Kafka 4.3.1
broker says about it at start-up. One JVM judges all the cases together, as the operator judges all
the nodes of a cluster together.
"""

from __future__ import annotations

import pytest

from bot.sandbox.operator.config_check import KafkaConfigChecker, invalid_config
from bot.sandbox.operator.faults import MISSING_REPORTER

VERSION = "4.3.1"
BASE = {
    "process.roles": "broker,controller", "node.id": "0", "controller.quorum.voters": "0@127.0.0.1:9093",
    "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    "advertised.listeners": "PLAINTEXT://127.0.0.1:9092",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "controller.listener.names": "CONTROLLER", "inter.broker.listener.name": "PLAINTEXT", "log.dirs": "/tmp/unused",
}
REFUSED = [
    ("log.cleaner.min.cleanable.ratio", "5", "Invalid value 5.0 for configuration log.cleaner.min.cleanable.ratio: "
                                             "Value must be no more than 1"),
    ("log.cleaner.min.cleanable.ratio", "-1", "Value must be at least 0"),
    ("log.cleaner.min.cleanable.ratio", "nan", "Not a number of type DOUBLE"),
    ("num.io.threads", "2147483648", "Invalid value 2147483648 for configuration num.io.threads: "
                                     "Not a number of type INT"),
    ("log.retention.ms", "9223372036854775808", "Not a number of type LONG"),
    ("log.segment.bytes", "0", "Value must be at least 1048576"),
    ("queued.max.requests", "0", "Value must be at least 1"),
    ("principal.builder.class", "not.a.Class", "Class not.a.Class could not be found."),
    ("compression.type", "zip", "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
]
ACCEPTED = [
    ("log.cleaner.min.cleanable.ratio", "0.7"),
    ("auto.create.topics.enable", "true"),
    # Reporter classes are only loaded when the broker starts them: what the start-failure fault uses.
    ("metric.reporters", MISSING_REPORTER),
]


@pytest.mark.timeout(120)
async def test_kafka_refuses_bad_values_in_its_own_words_and_accepts_good_ones() -> None:
    """Per node, every refused case names key and value in Kafka's wording; accepted cases give nothing."""
    checker = KafkaConfigChecker()
    cases = [*((k, v) for k, v, _ in REFUSED), *ACCEPTED]
    verdicts = await checker.verdicts(VERSION, [{**BASE, k: v} for k, v in cases])
    for (key, value, expected), problems in zip(REFUSED, verdicts, strict=False):
        assert len(problems) == 1 and expected in problems[0], (key, value, problems)
        assert f"for configuration {key}:" in problems[0]
    assert verdicts[len(REFUSED):] == [[]] * len(ACCEPTED)


@pytest.mark.timeout(120)
async def test_every_bad_key_is_named_once_and_an_unchanged_config_starts_no_jvm() -> None:
    """Two bad keys on two nodes: each named once; asking again reuses the verdict."""
    checker = KafkaConfigChecker()
    bad = {**BASE, "log.segment.bytes": "0", "queued.max.requests": "0"}
    configs = [bad, {**bad, "node.id": "1"}]
    problems = await checker.problems(VERSION, configs)
    assert sorted(problems) == [  # in the order Kafka's ConfigDef lists them
        "Invalid value 0 for configuration log.segment.bytes: Value must be at least 1048576",
        "Invalid value 0 for configuration queued.max.requests: Value must be at least 1"]
    assert await checker.problems(VERSION, configs) == problems
    assert await checker.problems(VERSION, [BASE]) == []
    assert checker.jvm_runs == 2, "the repeated question must be answered from the cache"
    failure = invalid_config("kafka", "demo", problems)
    assert failure.strimzi_reason == "InvalidResourceException"
    assert str(failure) == f"Kafka kafka/demo has invalid spec.kafka.config: {problems[0]}, {problems[1]}"
