"""Which broker config keys the config runbook refuses to touch, and which values it refuses (pure).

The deny-list follows Strimzi's own ``KafkaConfiguration`` forbidden options (docs/strimzi.md §1): keys
that carry a node's identity, its roles, its listeners, its storage or the controller quorum are
Strimzi's to render from the Kafka and KafkaNodePool specs; changed through ``spec.kafka.config``
they are silently dropped by a real operator, or, on a hand-run cluster, they split the cluster.
The upgrade's protocol keys belong to ``/kafka upgrade``. Each entry says why, because "refused"
alone teaches nobody anything.

Values are judged by ``runbooks.rules.config_values`` from Kafka's own model of each key (type, range,
allowed values), with Kafka's own messages. Control characters are refused outright: a newline in
a value would add a line to the rendered ``server.properties``.

Plugin keys (a class the brokers load at start: principal builders, metric reporters, replica
selectors, policies, callbacks, config providers) are refused unless the clusters file allows the
key for that cluster by name (``allowed_class_keys``): a class that is missing or wrong stops
every broker at its next start, and no check outside the brokers' own classpath can tell.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from runbooks.rules.config_model import KeySpec, available, load_model
from runbooks.rules.config_values import ValueRefused, echo, judge, looks_like_class, what_is_valid

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
    # 3.x (ZooKeeper): a broker whose id is above it does not start.
    "reserved.broker.max.id": _IDENTITY,
    "process.roles": _ROLES,
    "listeners": _LISTENERS,
    "advertised.listeners": _LISTENERS,
    "inter.broker.listener.name": _LISTENERS,
    "control.plane.listener.name": _LISTENERS,  # 3.x: names a listener; an unknown one stops the brokers
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
    ("broker.", "Strimzi drops every broker.* key of spec.kafka.config (rack and id come from spec.kafka.rack and "
                "the node pool), so the brokers would never see it"),
    ("zookeeper.", _ZOOKEEPER),
    ("ssl.", _SECURITY),
    ("sasl.", _SECURITY),
    ("security.", _SECURITY),
    ("password.", _SECURITY),
    ("authorizer.", _SECURITY),
)
# Strimzi's exceptions to its own prefixes: safe to tune through spec.kafka.config. Not the broker.*
# timeouts: Strimzi makes no exception for them, so it drops them from the spec and the brokers
# would never see the change (docs/strimzi.md §2).
ALLOWED: frozenset[str] = frozenset({
    "ssl.cipher.suites", "ssl.protocol", "ssl.enabled.protocols", "ssl.secure.random.implementation",
    "sasl.server.max.receive.size",
})

_KEY = re.compile(r"[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
# A key whose value names classes the brokers load (besides type CLASS): lists of reporters and
# providers, assignors, ".class" keys Kafka types as STRING (replica.selector.class, ...).
_PLUGIN_NAME = re.compile(r"(?:\.class|\.class\.name|\.class\.path|\.classes|reporters|providers|assignors)$")
_NAMES_CLASSES = re.compile(r"(?:\.class|\.class\.name|\.classes|reporters)$")  # each entry is a class name
_CLASS_LIST = re.compile(r"\s*(?:[a-z_$][\w$]*\.)+[A-Z][\w$]*\s*(?:,\s*(?:[a-z_$][\w$]*\.)+[A-Z][\w$]*\s*)*")

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


def typed_value(parsed: object, spec: KeySpec | None) -> str | int | float | bool:
    """The value as it is written into spec.kafka.config: YAML's number and boolean types where Kafka
    parses one, Kafka's parsed (trimmed) text otherwise."""
    kind = spec.type if spec is not None else ""
    if kind in ("INT", "SHORT", "LONG") and isinstance(parsed, int):
        return parsed
    if kind == "DOUBLE" and isinstance(parsed, float):
        return parsed
    if kind == "BOOLEAN" and isinstance(parsed, bool):
        return parsed
    if isinstance(parsed, list):
        return ",".join(str(p) for p in parsed)
    return str(parsed)


def value_verdict(key: str, value: str, spec: KeySpec | None) -> tuple[object, str | None]:
    """The value as the brokers would read it, and why a broker would refuse it (Kafka's own message
    and what is valid; None if it would take it). ``spec`` None (a key Kafka's model lacks) checks
    only what every value needs."""
    if not value:
        return None, f"{key}: the value is empty; to go back to the default use `unset {key}`"
    if _CONTROL.search(value):
        return None, (f"{key}: the value contains a control character (a newline would add a line to the broker's "
                      "config)")
    if spec is None:
        return value, None
    try:
        parsed = judge(key, value, spec)
    except ValueRefused as refused:
        return None, str(refused)
    names = parsed if isinstance(parsed, list) else [parsed]
    if _NAMES_CLASSES.search(key) and spec.type in ("LIST", "STRING"):
        wrong = [str(n) for n in names if n and not looks_like_class(str(n))]
        if wrong:
            return None, (f"Invalid value {echo(value)} for configuration {key}: {echo(wrong[0])} is not a Java class "
                          f"name (the brokers load it as a class at start) {what_is_valid(spec)}")
    return parsed, None


def value_problem(key: str, value: str, spec: KeySpec | None) -> str | None:
    return value_verdict(key, value, spec)[1]


def is_plugin_key(key: str, spec: KeySpec) -> bool:
    """Whether the key names classes the brokers load (see the module's docstring)."""
    if spec.type == "CLASS" or _PLUGIN_NAME.search(key):
        return True
    return spec.type in ("STRING", "LIST") and bool(spec.default) and bool(_CLASS_LIST.fullmatch(spec.default or ""))


def class_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be listed in a cluster's ``allowed_class_keys``: it must be a broker key that
    names classes in some Kafka release the bot has a model of."""
    specs = [spec for v in available() if (spec := load_model(v).keys.get(key)) is not None]
    if not specs:
        return f"{key!r} is not a broker config key of Kafka {', '.join(available())}"
    if not any(is_plugin_key(key, spec) for spec in specs):
        return f"{key} does not name a class, so it needs no allowing (allowed_class_keys lists plugin keys only)"
    return None


def plugin_refusal(key: str, spec: KeySpec, cluster_allows: frozenset[str]) -> str:
    allowed = ", ".join(sorted(cluster_allows)) or "none"
    return (f"{key} names a class the brokers load at start ({spec.type}): a missing or wrong class stops every "
            f"broker at its next start, so it is changed only where the clusters file allows it by name "
            f"(allowed_class_keys: [{key}] under this cluster; allowed now: {allowed})")


def suggestion(key: str, known: list[str]) -> str:
    """' (did you mean x?)' for a key the brokers do not know, when one is close."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""
