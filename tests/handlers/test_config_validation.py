"""Config values through the real service (real Redis) against the in-memory Strimzi: whatever a broker
would refuse is refused before any approval and nothing is written; a value Kafka applies live is
first judged by the brokers themselves (validate_only); plugin keys need the clusters file's
allowing. Also: the clusters file's ``allowed_class_keys``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.settings import ConfigError, load_clusters
from runbooks.engine.models import RunState
from tests.fakes.strimzi import FakeStrimzi

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(("change", "reason"), [
    ("log.cleaner.min.cleanable.ratio=5",
     "Invalid value 5.0 for configuration log.cleaner.min.cleanable.ratio: Value must be no more than 1 (valid: a "
     "finite number from 0 to 1. Default: 0.5)"),
    ("log.cleaner.min.cleanable.ratio=-1", "Value must be at least 0"),
    ("log.cleaner.min.cleanable.ratio=nan", "Invalid value nan for configuration log.cleaner.min.cleanable.ratio: "
                                            "Not a number of type DOUBLE"),
    ("log.cleaner.min.cleanable.ratio=inf", "Not a number of type DOUBLE"),
    ("log.cleaner.min.cleanable.ratio=NaN", "not a finite number"),
    ("num.io.threads=2147483648",
     "Invalid value 2147483648 for configuration num.io.threads: Not a number of type INT"),
    ("num.network.threads=2147483648", "num.network.threads: Not a number of type INT"),
    ("log.retention.ms=9223372036854775808", "log.retention.ms: Not a number of type LONG"),
    ("log.segment.bytes=0", "log.segment.bytes: Value must be at least 1048576"),
    ("queued.max.requests=0", "queued.max.requests: Value must be at least 1"),
    ("offsets.topic.replication.factor=0", "offsets.topic.replication.factor: Value must be at least 1"),
    ("offsets.topic.replication.factor=4", "offsets.topic.replication.factor=4 is more than the 3 brokers"),
    ("transaction.state.log.min.isr=4",
     "transaction.state.log.min.isr=4 is more than transaction.state.log.replication.factor=3"),
    ("replica.fetch.wait.max.ms=40000",
     "the brokers would not start: replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms"),
    ("metric.reporters=anything", "metric.reporters names a class the brokers load at start"),
    ("principal.builder.class=anything", "principal.builder.class names a class the brokers load at start"),
    ("replica.selector.class=anything", "replica.selector.class names a class the brokers load at start"),
    ("create.topic.policy.class.name=anything", "create.topic.policy.class.name names a class"),
    ("config.providers=anything", "config.providers names a class the brokers load at start"),
])
async def test_a_refused_value_gets_no_run_and_writes_nothing(make_bot, change: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    """Each value of issue 18: refused in Kafka's words before any approval; no run, no lock, no patch, and
    the brokers are not even asked (the planner already knows)."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake)
    reply = await bot.say(f"config prod set {change}")
    assert not reply.ok and reply.run is None
    assert reason in reply.text, reply.text
    assert fake.generation == 1 and fake.spec["config"] == {}
    assert await bot.runs.active() == [] and fake.validations == []


async def test_a_value_only_the_brokers_refuse_is_refused_in_their_words(make_bot) -> None:  # type: ignore[no-untyped-def]
    """num.io.threads=100 is a valid INT, but a broker resizes a thread pool by at most double at a time: each
    live broker is asked (validate only) and its refusal becomes the plan's; nothing is written."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake)
    reply = await bot.say("config prod set num.io.threads=100")
    assert not reply.ok and reply.run is None
    assert ("the brokers refuse num.io.threads=100 (IncrementalAlterConfigs, validate only): brokers 0, 1, 2: "
            "Dynamic thread count update validation failed for num.io.threads=100, value should not be greater than "
            "double the current value 8") in reply.text, reply.text
    assert fake.validations == [(b, {"num.io.threads": "100"}) for b in (0, 1, 2)]
    assert fake.generation == 1 and await bot.runs.active() == []


async def test_a_valid_live_value_is_judged_by_the_brokers_then_applied(make_bot) -> None:  # type: ignore[no-untyped-def]
    """log.cleaner.min.cleanable.ratio=0.6: the brokers are asked before the approval, then the run applies it."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake)
    reply = await bot.say("config prod set log.cleaner.min.cleanable.ratio=0.6")
    assert reply.ok and reply.run is not None, reply.text
    assert fake.validations == [(b, {"log.cleaner.min.cleanable.ratio": "0.6"}) for b in (0, 1, 2)]
    assert fake.generation == 1, "asking the brokers wrote nothing"
    run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert fake.spec["config"] == {"log.cleaner.min.cleanable.ratio": 0.6} and fake.restart_order == []


async def test_a_start_up_key_is_not_asked_of_the_brokers(make_bot) -> None:  # type: ignore[no-untyped-def]
    """queued.max.requests is read at start only: a live update would be refused for that alone, so the
    brokers are not asked; the model has judged it and the run rolls the brokers."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake)
    reply = await bot.say("config prod set queued.max.requests=600")
    assert reply.ok and reply.run is not None, reply.text
    assert fake.validations == []


async def test_an_allowed_plugin_key_takes_a_class_name(make_bot) -> None:  # type: ignore[no-untyped-def]
    """With metric.reporters allowed for this cluster a class name is planned (and asked of the brokers); text
    that is no class name is still refused."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake, allowed_class_keys=frozenset({"metric.reporters"}))
    refused = await bot.say("config prod set metric.reporters=not-a-class")
    assert not refused.ok and "not-a-class is not a Java class name" in refused.text, refused.text
    reply = await bot.say("config prod set metric.reporters=com.example.Reporter")
    assert reply.ok and reply.run is not None, reply.text
    assert fake.validations == [(b, {"metric.reporters": "com.example.Reporter"}) for b in (0, 1, 2)]


async def test_a_zookeeper_cluster_changes_config_judged_by_its_own_kafka(make_bot) -> None:  # type: ignore[no-untyped-def]
    """A Strimzi 0.45 ZooKeeper cluster on 3.8.1 has a model again: a valid value is planned and applied, and a
    value is refused by 3.8's rules (log.segment.bytes at least 14, where 4.x says 1 MiB), writing nothing."""
    fake = FakeStrimzi("legacy", version="3.8.1", zookeeper=True)
    bot = await make_bot(fake)
    refused = await bot.say("config legacy set log.segment.bytes=0")
    assert not refused.ok and refused.run is None
    assert "Invalid value 0 for configuration log.segment.bytes: Value must be at least 14 " in refused.text, \
        refused.text
    assert fake.generation == 1 and fake.spec["config"] == {}
    reply = await bot.say("config legacy set log.cleaner.min.cleanable.ratio=0.6")
    assert reply.ok and reply.run is not None, reply.text
    run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert fake.spec["config"] == {"log.cleaner.min.cleanable.ratio": 0.6}


def _clusters_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "clusters.yaml"
    path.write_text(body)
    return path


def test_the_clusters_file_allows_plugin_keys_by_name(tmp_path: Path) -> None:
    """allowed_class_keys reaches the cluster the use cases see; absent, nothing is allowed."""
    body = ("clusters:\n  prod:\n    approvers: [U1]\n    allowed_class_keys: [metric.reporters, "
            "principal.builder.class]\n  dev:\n    approvers: [U1]\n")
    clusters = load_clusters(_clusters_file(tmp_path, body))
    assert clusters["prod"].allowed_class_keys == frozenset({"metric.reporters", "principal.builder.class"})
    assert clusters["dev"].allowed_class_keys == frozenset()


@pytest.mark.parametrize(("listed", "says"), [
    ("metric.reporter", "'metric.reporter' is not a broker config key of Kafka 3.8.1, 3.9.0, 4.2.2, 4.3.1"),
    ("log.retention.ms", "log.retention.ms does not name a class, so it needs no allowing"),
])
def test_the_clusters_file_refuses_what_is_no_plugin_key(tmp_path: Path, listed: str, says: str) -> None:
    """A typo or an ordinary key in allowed_class_keys is refused at start, naming it."""
    with pytest.raises(ConfigError) as caught:
        load_clusters(_clusters_file(tmp_path, f"clusters:\n  prod:\n    approvers: [U1]\n"
                                               f"    allowed_class_keys: [{listed}]\n"))
    assert says in str(caught.value) and "clusters.prod.allowed_class_keys" in str(caught.value)
