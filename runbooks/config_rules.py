"""Which broker config keys the config runbook refuses to touch, and which values it refuses (pure).

The deny-list follows Strimzi's own ``KafkaConfiguration`` forbidden options (strimzi.md §1): keys
that carry a node's identity, its roles, its listeners, its storage or the controller quorum are
Strimzi's to render from the Kafka and KafkaNodePool specs; changed through ``spec.kafka.config``
they are silently dropped by a real operator, or, on a hand-run cluster, they split the cluster.
The upgrade's protocol keys belong to ``/kafka upgrade``. Each entry says why, because "refused"
alone teaches nobody anything.

Values are checked against the type the brokers themselves report for the key (DescribeConfigs'
``config_type``), then against a few semantic rules a type cannot express (a min ISR no topic can
reach, an unknown compression codec). Control characters are refused outright: a newline in a
value would add a line to the rendered ``server.properties``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

_IDENTITY = "a node's identity: Strimzi assigns node ids through the KafkaNodePool"
_ROLES = "a node's roles come from the KafkaNodePool's spec.roles; changing them here would orphan its data"
_LISTENERS = ("listeners are rendered by Strimzi from spec.kafka.listeners (with its certificates and "
              "services); change spec.kafka.listeners instead")
_STORAGE = "log directories are the pod's volumes (the node pool's spec.storage); a change here loses the data"
_QUORUM = ("controller quorum settings decide who the controllers are and how they elect a leader; a "
           "mistake stalls or splits the KRaft quorum, so they are Strimzi's to set")
_SECURITY = "TLS, SASL and authorization are spec.kafka.listeners / authentication / authorization in Strimzi"
_UPGRADE = "this is part of the version upgrade procedure: use /kafka upgrade"
_ZOOKEEPER = "the ZooKeeper connection is Strimzi's to set"

DENIED_EXACT: Mapping[str, str] = {
    "node.id": _IDENTITY,
    "broker.id": _IDENTITY,
    "process.roles": _ROLES,
    "listeners": _LISTENERS,
    "advertised.listeners": _LISTENERS,
    "inter.broker.listener.name": _LISTENERS,
    "log.dirs": _STORAGE,
    "log.dir": _STORAGE,
    "metadata.log.dir": _STORAGE,
    "super.users": _SECURITY,
    "host.name": _LISTENERS,
    "port": _LISTENERS,
    "inter.broker.protocol.version": _UPGRADE,
    "log.message.format.version": _UPGRADE,
    "unstable.feature.versions.enable": "it enables unreleased metadata versions, which can never be downgraded",
    "cruise.control.metrics.topic": "Strimzi sets it for Cruise Control",
    "cruise.control.metrics.reporter.bootstrap.servers": "Strimzi sets it for Cruise Control",
}
DENIED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("controller.", _QUORUM),
    ("listener.", _LISTENERS),
    ("advertised.", _LISTENERS),
    ("broker.", "broker.* (rack, id) comes from spec.kafka.rack and the node pool"),
    ("zookeeper.", _ZOOKEEPER),
    ("ssl.", _SECURITY),
    ("sasl.", _SECURITY),
    ("security.", _SECURITY),
    ("password.", _SECURITY),
    ("authorizer.", _SECURITY),
)
# Strimzi's exceptions to its own prefixes: safe to tune through spec.kafka.config.
ALLOWED: frozenset[str] = frozenset({
    "broker.session.timeout.ms", "broker.heartbeat.interval.ms", "ssl.cipher.suites", "ssl.protocol",
    "ssl.enabled.protocols", "ssl.secure.random.implementation", "sasl.server.max.receive.size",
})

_KEY = re.compile(r"[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_CODECS = frozenset({"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"})
_POLICIES = frozenset({"delete", "compact"})
_TIMESTAMP_TYPES = frozenset({"CreateTime", "LogAppendTime"})
_INT_TYPES = frozenset({"INT", "LONG", "SHORT"})
_KNOWN_INTS = frozenset({"min.insync.replicas", "default.replication.factor", "num.partitions"})


class ConfigEntryInfo(BaseModel):
    """One broker config as a broker reports it (DescribeConfigs with every key)."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str | None = None
    source: str = ""  # DEFAULT_CONFIG, STATIC_BROKER_CONFIG, DYNAMIC_BROKER_CONFIG, ...
    read_only: bool = True  # Kafka's own verdict: False means it can be changed on a running broker
    sensitive: bool = False
    type: str = ""  # BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST, CLASS, PASSWORD ('' if unknown)


def denial(key: str) -> str | None:
    """Why ``key`` may never be changed through this runbook; None if it may."""
    if key in ALLOWED:
        return None
    if key in DENIED_EXACT:
        return DENIED_EXACT[key]
    for prefix, reason in DENIED_PREFIXES:
        if key.startswith(prefix):
            return reason
    return None


def key_problem(key: str) -> str | None:
    if not _KEY.fullmatch(key):
        return (f"{key!r} is not a Kafka config name: names are lowercase words joined by '.', e.g. "
                "log.retention.ms")
    reason = denial(key)
    if reason:
        return f"{key} cannot be changed this way: {reason}"
    return None


def typed_value(value: str, info: ConfigEntryInfo | None) -> str | int | float | bool:
    """The value as it is written into spec.kafka.config (YAML types where Kafka's type is known)."""
    kind = info.type if info is not None else ""
    if kind in _INT_TYPES:
        return int(value)
    if kind == "BOOLEAN":
        return value.lower() == "true"
    if kind == "DOUBLE":
        return float(value)
    return value


def value_problem(key: str, value: str, info: ConfigEntryInfo | None, *, smallest_rf: int | None,
                  brokers: int) -> str | None:
    """Why ``value`` is not valid for ``key``; None if it is."""
    if not value:
        return f"{key}: the value is empty; to go back to the default use `unset {key}`"
    if _CONTROL.search(value):
        return f"{key}: the value contains a control character (a newline would add a line to the broker's config)"
    kind = info.type if info is not None else ""
    if kind in _INT_TYPES or (not kind and (key in _KNOWN_INTS or key.endswith((".ms", ".bytes", ".threads")))):
        try:
            number = int(value)
        except ValueError:
            return f"{key} takes a whole number, got {value!r}"
        if number < -1 or (number < 0 and not key.startswith("log.retention")):
            return f"{key} must be 0 or more{' (or -1 for unlimited)' if key.startswith('log.retention') else ''}"
        return _int_rule(key, number, smallest_rf=smallest_rf, brokers=brokers)
    if kind == "BOOLEAN" and value.lower() not in ("true", "false"):
        return f"{key} takes true or false, got {value!r}"
    if kind == "DOUBLE":
        try:
            float(value)
        except ValueError:
            return f"{key} takes a number, got {value!r}"
    if key.endswith("compression.type") and value not in _CODECS:
        return f"{key} must be one of {', '.join(sorted(_CODECS))}, got {value!r}"
    if key.endswith("cleanup.policy") and not set(value.split(",")) <= _POLICIES:
        return f"{key} is delete, compact or compact,delete, got {value!r}"
    if key.endswith("timestamp.type") and value not in _TIMESTAMP_TYPES:
        return f"{key} is CreateTime or LogAppendTime, got {value!r}"
    return None


def _int_rule(key: str, number: int, *, smallest_rf: int | None, brokers: int) -> str | None:
    positive = ("num.io.threads", "num.network.threads", "num.replica.fetchers", "background.threads",
                "log.cleaner.threads", "num.recovery.threads.per.data.dir", "num.partitions", "message.max.bytes")
    if key in positive and number < 1:
        return f"{key} must be at least 1"
    if key == "min.insync.replicas":
        if number < 1:
            return "min.insync.replicas must be at least 1"
        if smallest_rf is not None and number > smallest_rf:
            return (f"min.insync.replicas={number} is more than {smallest_rf}, the smallest replication factor "
                    "it would apply to (topics using the broker default, default.replication.factor, the broker "
                    "count): every acks=all producer to them would fail")
    if key == "default.replication.factor" and not 1 <= number <= brokers:
        return f"default.replication.factor must be between 1 and the number of brokers ({brokers})"
    return None


def suggestion(key: str, known: list[str]) -> str:
    """' (did you mean x?)' for a key the brokers do not know, when one is close."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""
