"""The broker configs the fake brokers know, and how a broker judges a live update of them.

Written from Kafka's ``DynamicBrokerConfig`` and ``DynamicThreadPool``: a key a broker cannot change
live is refused, a number must parse as its type, and a thread pool may at most double or halve
at a time. Keys a broker does not know pass, as they do on a real one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

# (type, dynamic) of the broker configs this fake knows; everything else is unknown to its "brokers".
CATALOGUE: dict[str, tuple[str, bool]] = {
    "log.retention.ms": ("LONG", True),
    "log.cleaner.threads": ("INT", True),
    "min.insync.replicas": ("INT", True),
    "num.io.threads": ("INT", True),
    "compression.type": ("STRING", True),
    "auto.create.topics.enable": ("BOOLEAN", False),
    "default.replication.factor": ("INT", False),
    "inter.broker.protocol.version": ("STRING", False),
    "log.message.format.version": ("STRING", False),
    "node.id": ("INT", False),
    "log.cleaner.min.cleanable.ratio": ("DOUBLE", True),
    "num.network.threads": ("INT", True),
    "log.segment.bytes": ("INT", True),
    "queued.max.requests": ("INT", False),
    "offsets.topic.replication.factor": ("SHORT", False),
    "transaction.state.log.replication.factor": ("SHORT", False),
    "transaction.state.log.min.isr": ("INT", False),
    "replica.fetch.wait.max.ms": ("INT", False),
    "replica.socket.timeout.ms": ("INT", False),
    "replica.lag.time.max.ms": ("LONG", False),
    "metric.reporters": ("LIST", True),
    "config.providers": ("LIST", True),
    "principal.builder.class": ("CLASS", True),
    "replica.selector.class": ("STRING", False),
    "create.topic.policy.class.name": ("CLASS", False),
}
# Kafka's DynamicThreadPool: the pools a broker resizes live, and by how much at a time.
THREAD_POOLS = ("num.io.threads", "num.network.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir",
                "background.threads")
NUMBER_RANGES = {"INT": 2**31, "SHORT": 2**15, "LONG": 2**63}
DEFAULTS = {"min.insync.replicas": "1", "default.replication.factor": "3", "auto.create.topics.enable": "true",
            "num.io.threads": "8", "log.cleaner.threads": "1", "compression.type": "producer",
            "log.cleaner.min.cleanable.ratio": "0.5", "num.network.threads": "3", "log.segment.bytes": "1073741824",
            "queued.max.requests": "500", "offsets.topic.replication.factor": "3",
            "transaction.state.log.replication.factor": "3", "transaction.state.log.min.isr": "2",
            "replica.fetch.wait.max.ms": "500", "replica.socket.timeout.ms": "30000",
            "replica.lag.time.max.ms": "30000", "metric.reporters": "org.apache.kafka.common.metrics.JmxReporter",
            "config.providers": "", "num.replica.fetchers": "1", "background.threads": "10",
            "principal.builder.class": "org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder"}




def judge_live_update(values: Mapping[str, str], current: Callable[[str], str | None]) -> str | None:
    """None if a broker would take ``values`` live (IncrementalAlterConfigs, validate_only), else its
    error; ``current`` gives the broker's value of a key now (None when unknown)."""
    static = sorted(k for k in values if k in CATALOGUE and not CATALOGUE[k][1])
    if static:
        return f"Cannot update these configs dynamically: [{', '.join(static)}]"
    for key, value in values.items():
        kind = CATALOGUE.get(key, ("", True))[0]
        if kind not in NUMBER_RANGES:
            continue
        try:
            number = int(value.strip())
        except ValueError:
            number = NUMBER_RANGES[kind]
        if not -NUMBER_RANGES[kind] <= number < NUMBER_RANGES[kind]:
            return f"Invalid value {value} for configuration {key}: Not a number of type {kind}"
        now_text = current(key)
        if key in THREAD_POOLS and now_text is not None:
            now = int(now_text)
            failed = f"Dynamic thread count update validation failed for {key}={number}"
            if number > now * 2:
                return f"{failed}, value should not be greater than double the current value {now}"
            if number < now / 2:
                return f"{failed}, value should be at least half the current value {now}"
    return None
