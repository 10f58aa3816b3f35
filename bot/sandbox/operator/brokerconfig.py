"""``spec.kafka.config`` -> broker properties, and which changes need a restart.

Strimzi renders the user's config into every broker's properties (minus the options it owns, such
as listeners and node ids) and, on a change, asks ``KafkaBrokerConfigurationDiff`` whether the
changed keys can be applied through Admin ``incrementalAlterConfigs``. Strimzi decides that from a
per-version config model; the twin keeps a short list of keys Kafka documents as dynamically
updatable ("cluster-wide" or "per-broker" in the broker config docs). Anything else rolls the broker
with the reason ConfigChangeRequiresRestart. Like Strimzi, dynamic values are set per broker
(``ConfigResource(BROKER, "<id>")``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Keys Kafka can change on a running broker (DynamicBrokerConfig: log/cleaner/thread pools/quotas).
DYNAMIC_KEYS = frozenset({
    "log.retention.ms", "log.retention.bytes", "log.retention.minutes", "log.retention.hours",
    "log.segment.bytes", "log.roll.ms", "log.roll.hours", "log.index.size.max.bytes",
    "log.flush.interval.messages", "log.flush.interval.ms", "log.cleanup.policy",
    "log.cleaner.threads", "log.cleaner.io.max.bytes.per.second", "log.cleaner.dedupe.buffer.size",
    "log.cleaner.backoff.ms", "log.cleaner.delete.retention.ms", "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms", "log.cleaner.min.cleanable.ratio", "log.preallocate",
    "log.segment.delete.delay.ms", "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms", "log.message.timestamp.type",
    "message.max.bytes", "min.insync.replicas", "compression.type", "unclean.leader.election.enable",
    "num.io.threads", "num.network.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir",
    "background.threads", "max.connections", "max.connections.per.ip", "max.connection.creation.rate",
    "leader.replication.throttled.rate", "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
})

# Options Strimzi owns and ignores in spec.kafka.config (KafkaConfiguration FORBIDDEN_PREFIXES, the
# subset that matters without TLS/auth), with its exceptions.
_FORBIDDEN_PREFIXES = (
    "listeners", "advertised.", "broker.", "listener.", "host.name", "port", "inter.broker.listener.name",
    "sasl.", "ssl.", "security.", "password.", "log.dir", "zookeeper.", "authorizer.", "super.user",
    "node.id", "process.roles", "controller.", "metadata.log.dir",
)
_FORBIDDEN_EXCEPTIONS = frozenset({
    "controller.quorum.election.backoff.max.ms", "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms", "broker.session.timeout.ms", "broker.heartbeat.interval.ms",
})


def is_forbidden(key: str) -> bool:
    if key in _FORBIDDEN_EXCEPTIONS:
        return False
    return any(key == p or key.startswith(p) for p in _FORBIDDEN_PREFIXES)


def render_value(value: Any) -> str:
    """Strimzi's rendering of a YAML value into a properties value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(render_value(v) for v in value)
    return str(value)


def user_config(spec_config: Mapping[str, Any] | None) -> tuple[dict[str, str], list[str]]:
    """(the properties the brokers get from spec.kafka.config, the forbidden keys that were dropped)."""
    out: dict[str, str] = {}
    dropped: list[str] = []
    for key, value in (spec_config or {}).items():
        if value is None:
            continue
        if is_forbidden(str(key)):
            dropped.append(str(key))
            continue
        out[str(key)] = render_value(value)
    return out, sorted(dropped)


def config_hash(config: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(sorted(config.items()))).encode()).hexdigest()[:8]


@dataclass
class BrokerConfigState:
    """What one running broker was started with, plus what was applied dynamically since."""

    static: dict[str, str] = field(default_factory=dict)
    dynamic: dict[str, str] = field(default_factory=dict)  # per-broker overrides set via Admin

    def effective(self, key: str) -> str | None:
        if key in self.dynamic:
            return self.dynamic[key]
        return self.static.get(key)


@dataclass(frozen=True)
class ConfigDiff:
    restart_keys: tuple[str, ...]  # keys whose change needs a restart
    dynamic_set: dict[str, str]  # key -> value to set with incrementalAlterConfigs
    dynamic_delete: tuple[str, ...]  # per-broker overrides to remove

    @property
    def needs_restart(self) -> bool:
        return bool(self.restart_keys)

    @property
    def has_dynamic(self) -> bool:
        return bool(self.dynamic_set or self.dynamic_delete)


def diff(current: BrokerConfigState, desired: Mapping[str, str]) -> ConfigDiff:
    """What to do to bring a broker from ``current`` to ``desired``."""
    restart: list[str] = []
    for key in sorted(set(current.static) | set(desired)):
        if key in DYNAMIC_KEYS:
            continue
        if current.static.get(key) != desired.get(key):
            restart.append(key)
    to_set: dict[str, str] = {}
    to_delete: list[str] = []
    for key in sorted((set(current.static) | set(current.dynamic) | set(desired)) & DYNAMIC_KEYS):
        want = desired.get(key)
        if want is None:
            if key in current.dynamic:
                to_delete.append(key)
            if key in current.static:
                # Back to Kafka's default means rewriting the properties file: a restart, as Strimzi's
                # diff reports for removed keys.
                restart.append(key)
        elif current.effective(key) != want:
            to_set[key] = want
    return ConfigDiff(tuple(restart), to_set, tuple(to_delete))
