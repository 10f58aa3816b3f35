"""Rules across keys, judged on the config the brokers would end up with (pure).

A value can pass its own key's validator and still stop every broker at its next start: Kafka's
``KafkaConfig`` checks keys against each other when a broker starts (``validateValues``, and the
``require``s of ``GroupCoordinatorConfig`` and ``ShareGroupConfig`` it builds), and a broker that
fails one exits. Those checks are reproduced here with Kafka's own messages; a test holds each one
to ``KafkaConfig.fromProps`` run on the jars of every version with a model. The checks differ
between releases (3.x checks ``offsets.commit.required.acks``, which 4.0 removed; 4.x added
heartbeat < session and reworded the group checks), so each rule says which release lines check
it, and judges only a cluster on one of them.

Other values start fine and break the cluster later, which is worse: an internal topic whose
replication factor exceeds the broker count is never created (consumers find no group
coordinator, transactions never start), and a min ISR above a replication factor fails every
acks=all write. Those are the bot's own rules, and say so.

Every rule reads the config the brokers would run with: this change, else spec.kafka.config, else
what the brokers report now, else Kafka's default. Only rules that involve a key the change
touches are judged: a problem the cluster already has is not this change's to refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runbooks.rules.config_model import BrokerConfigModel
from runbooks.rules.config_values import ValueRefused, java_text, parse
from runbooks.rules.versions import VersionError, line_key, release_line

_MIB = 1024 * 1024
_HOUR_MS, _MINUTE_MS = 3_600_000, 60_000


def show(value: Any) -> str:
    """A spec.kafka.config value (YAML-typed) as the brokers' properties file holds it."""
    return str(value).lower() if isinstance(value, bool) else str(value)


class Effective:
    """The config the brokers would end up with after the change, key by key."""

    def __init__(self, model: BrokerConfigModel, *, spec: Mapping[str, Any], reported: Mapping[str, str | None],
                 change: Mapping[str, str | None]) -> None:
        self._model, self._spec, self._reported, self._change = model, spec, reported, change

    def origin(self, key: str) -> str:
        if key in self._change:
            return "this change" if self._change[key] is not None else "Kafka's default, once unset"
        if key in self._spec:
            return "spec.kafka.config"
        return "the brokers now" if key in self._reported else "Kafka's default"

    def text(self, key: str) -> str | None:
        if key in self._change:
            value = self._change[key]
            return value if value is not None else self._default(key)
        if key in self._spec:
            return show(self._spec[key])
        if key in self._reported:
            return self._reported[key]
        return self._default(key)

    def _default(self, key: str) -> str | None:
        spec = self._model.keys.get(key)
        return spec.default if spec is not None else None

    def value(self, key: str) -> Any:
        """The parsed value (int, float, bool, list, str); None if unset or unreadable."""
        spec, text = self._model.keys.get(key), self.text(key)
        if spec is None or text is None:
            return None
        try:
            return parse(key, text, spec)
        except ValueRefused:
            return None

    def number(self, key: str) -> int | float | None:
        value = self.value(key)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    def shown(self, *keys: str) -> str:
        return "; ".join(f"{k}={java_text(self.value(k))} ({self.origin(k)})" for k in keys)


Line = tuple[int, int]  # a Kafka release line: (3, 9) for 3.9.x
_KAFKA_4: Line = (4, 0)


@dataclass(frozen=True)
class Rule:
    keys: tuple[str, ...]
    check: Callable[[Effective, int | None], str | None]
    # The release lines whose brokers check it: from ``since`` (None: every line with a model) up to,
    # not including, ``until`` (None: every later line).
    since: Line | None = None
    until: Line | None = None

    def applies_to(self, model: BrokerConfigModel) -> bool:
        """Whether it judges a cluster that ``model`` judges: every key it reads is a key of that Kafka
        version, and that version checks it."""
        if not all(k in model.keys for k in self.keys):
            return False
        try:
            line = line_key(release_line(model.kafka_version))
        except VersionError:
            return False
        return (self.since is None or line >= self.since) and (self.until is None or line < self.until)


def _start(message: str, *keys: str) -> Callable[[Effective], str]:
    return lambda eff: f"the brokers would not start: {message} ({eff.shown(*keys)})"


def _roll(eff: Effective, _: int | None) -> str | None:
    ms, hours = eff.number("log.roll.ms"), eff.number("log.roll.hours")
    roll = ms if ms is not None else (hours * _HOUR_MS if hours is not None else None)
    return None if roll is None or roll >= 1 else _start(
        "log.roll.ms must be greater than or equal to 1", "log.roll.ms", "log.roll.hours")(eff)


def _jitter(eff: Effective, _: int | None) -> str | None:
    ms, hours = eff.number("log.roll.jitter.ms"), eff.number("log.roll.jitter.hours")
    jitter = ms if ms is not None else (hours * _HOUR_MS if hours is not None else None)
    return None if jitter is None or jitter >= 0 else _start(
        "log.roll.jitter.ms must be greater than or equal to 0", "log.roll.jitter.ms", "log.roll.jitter.hours")(eff)


_RETENTION = ("log.retention.ms", "log.retention.minutes", "log.retention.hours")


def _retention_ms(eff: Effective) -> int | float | None:
    ms, minutes, hours = (eff.number(k) for k in _RETENTION)
    if ms is not None:
        return ms
    if minutes is not None:
        return minutes * _MINUTE_MS
    return hours * _HOUR_MS if hours is not None else None


def _retention(eff: Effective, _: int | None) -> str | None:
    millis = _retention_ms(eff)
    if millis is None or millis < 0 or millis >= 1:  # Kafka reads any negative as -1, unlimited
        return None
    return _start("log.retention.ms must be unlimited (-1) or, greater than or equal to 1", *_RETENTION)(eff)


def _dedupe(eff: Effective, _: int | None) -> str | None:
    size, threads = eff.number("log.cleaner.dedupe.buffer.size"), eff.number("log.cleaner.threads")
    if size is None or threads is None:
        return None
    if threads == 0:
        return ("the brokers would not start: they divide log.cleaner.dedupe.buffer.size by log.cleaner.threads and "
                f"stop with ArithmeticException: / by zero ({eff.shown('log.cleaner.threads')})")
    per_thread = abs(int(size)) // abs(int(threads)) * (1 if (size >= 0) == (threads >= 0) else -1)
    return None if per_thread > _MIB else _start(
        "log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread.",
        "log.cleaner.dedupe.buffer.size", "log.cleaner.threads")(eff)


def _compare(a: str, b: str, holds: Callable[[float, float], bool], message: str, *,
             since: Line | None = None, until: Line | None = None) -> Rule:
    def check(eff: Effective, _: int | None) -> str | None:
        left, right = eff.number(a), eff.number(b)
        if left is None or right is None or holds(left, right):
            return None
        return _start(message, a, b)(eff)
    return Rule((a, b), check, since, until)


def _queued(eff: Effective, _: int | None) -> str | None:
    queued, request = eff.number("queued.max.request.bytes"), eff.number("socket.request.max.bytes")
    if queued is None or request is None or queued <= 0 or queued >= request:
        return None
    return _start("queued.max.request.bytes must be larger or equal to socket.request.max.bytes",
                  "queued.max.request.bytes", "socket.request.max.bytes")(eff)


def _connections(eff: Effective, _: int | None) -> str | None:
    if eff.number("max.connections.per.ip") != 0 or (eff.text("max.connections.per.ip.overrides") or "").strip():
        return None
    return _start("max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is "
                  "set.", "max.connections.per.ip", "max.connections.per.ip.overrides")(eff)


def _auth_delay(eff: Effective, _: int | None) -> str | None:
    delay, idle = eff.number("connection.failed.authentication.delay.ms"), eff.number("connections.max.idle.ms")
    if delay is None or idle is None or idle < 0 or delay < idle:
        return None
    return (f"the brokers would not start: connection.failed.authentication.delay.ms={delay} should always be less "
            f"than connections.max.idle.ms={idle} to prevent failed authentication responses from timing out "
            f"({eff.shown('connection.failed.authentication.delay.ms', 'connections.max.idle.ms')})")


def _heartbeat(eff: Effective, _: int | None) -> str | None:
    beat, session = eff.number("broker.heartbeat.interval.ms"), eff.number("broker.session.timeout.ms")
    if beat is None or session is None or beat * 2 <= session:
        return None
    return (f"broker.heartbeat.interval.ms ({beat} ms) must be less than or equal to half of the "
            f"broker.session.timeout.ms ({session} ms): Kafka starts anyway and logs this as an error, and a broker "
            "that misses its session loses its lease and is fenced "
            f"({eff.shown('broker.heartbeat.interval.ms', 'broker.session.timeout.ms')})")


def _one_assignor(eff: Effective, _: int | None) -> str | None:
    assignors = eff.value("group.share.assignors")
    if not isinstance(assignors, list) or len(assignors) == 1:
        return None
    return _start(f"group.share.assignors must contain exactly one assignor, but found {len(assignors)}",
                  "group.share.assignors")(eff)


def _snapshot_records(eff: Effective, _: int | None) -> str | None:
    key = "share.coordinator.snapshot.update.records.per.snapshot"
    value = eff.number(key)  # 4.2's ConfigDef has no upper bound; its ShareCoordinatorConfig checks one
    return None if value is None or 0 <= value <= 500 else _start(f"{key} must be between [0, 500]", key)(eff)


def _commit_acks(words: str) -> Callable[[Effective, int | None], str | None]:
    def check(eff: Effective, _: int | None) -> str | None:
        acks, rf = eff.number("offsets.commit.required.acks"), eff.number("offsets.topic.replication.factor")
        if acks is None or rf is None or -1 <= acks <= rf:
            return None
        return _start(f"offsets.commit.required.acks {words} offsets.topic.replication.factor",
                      "offsets.commit.required.acks", "offsets.topic.replication.factor")(eff)
    return check


_COMMIT_ACKS = ("offsets.commit.required.acks", "offsets.topic.replication.factor")

_GE, _LE, _LT = (">=", lambda a, b: a >= b), ("<=", lambda a, b: a <= b), ("<", lambda a, b: a < b)
# How each release words a failed relation: 4.x's GroupCoordinatorConfig / ShareGroupConfig, and
# 3.8's KafkaConfig / 3.9's GroupCoordinatorConfig and ShareGroupConfig.
_WORDS_4 = {">=": "must be greater than or equal to", "<=": "must be less than or equal to", "<": "must be less than"}
_WORDS_3 = {">=": "must be greater than or equals to", "<=": "must be less than or equals to"}
_MIN_MAX = (
    ("max.heartbeat.interval.ms", _GE, "min.heartbeat.interval.ms"),
    ("heartbeat.interval.ms", _GE, "min.heartbeat.interval.ms"),
    ("heartbeat.interval.ms", _LE, "max.heartbeat.interval.ms"),
    ("max.session.timeout.ms", _GE, "min.session.timeout.ms"),
    ("session.timeout.ms", _GE, "min.session.timeout.ms"),
    ("session.timeout.ms", _LE, "max.session.timeout.ms"),
)
_RECORD_LOCKS = (
    ("share.record.lock.duration.ms", _GE, "share.min.record.lock.duration.ms"),
    ("share.max.record.lock.duration.ms", _GE, "share.record.lock.duration.ms"),
)
Pair = tuple[str, tuple[str, Callable[[float, float], bool]], str]
# GroupCoordinatorConfig / ShareGroupConfig of 4.x: (key, relation, key), checked in this order at start.
_GROUP_PAIRS: tuple[Pair, ...] = tuple(
    (f"group.{kind}.{a}", op, f"group.{kind}.{b}")
    for kind in ("consumer", "share", "streams")
    for a, op, b in (
        *_MIN_MAX,
        ("heartbeat.interval.ms", _LT, "session.timeout.ms"),
        ("max.assignment.interval.ms", _GE, "min.assignment.interval.ms"),
        ("assignment.interval.ms", _GE, "min.assignment.interval.ms"),
        ("assignment.interval.ms", _LE, "max.assignment.interval.ms"),
    )
) + tuple((f"group.{a}", op, f"group.{b}") for a, op, b in (
    ("streams.num.standby.replicas", _LE, "streams.max.standby.replicas"),
    ("share.max.delivery.count.limit", _GE, "share.delivery.count.limit"),
    ("share.delivery.count.limit", _GE, "share.min.delivery.count.limit"),
    ("share.max.partition.max.record.locks", _GE, "share.partition.max.record.locks"),
    ("share.partition.max.record.locks", _GE, "share.min.partition.max.record.locks"),
    *_RECORD_LOCKS,
    ("share.max.share.sessions", _GE, "share.max.size"),
))
# 3.8 and 3.9 check only the min/max pairs of consumer groups (and of share groups, whose keys 3.9
# added), not heartbeat < session, which a 3.x broker starts with.
_GROUP_PAIRS_3: tuple[Pair, ...] = tuple(
    (f"group.{kind}.{a}", op, f"group.{kind}.{b}") for kind in ("consumer", "share") for a, op, b in _MIN_MAX
) + tuple((f"group.{a}", op, f"group.{b}") for a, op, b in _RECORD_LOCKS)

START_RULES: tuple[Rule, ...] = (
    Rule(("log.roll.ms", "log.roll.hours"), _roll),
    Rule(("log.roll.jitter.ms", "log.roll.jitter.hours"), _jitter),
    Rule(_RETENTION, _retention),
    Rule(("log.cleaner.dedupe.buffer.size", "log.cleaner.threads"), _dedupe),
    _compare("replica.fetch.wait.max.ms", "replica.socket.timeout.ms", lambda a, b: a <= b,
             "replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms to prevent unnecessary "
             "socket timeouts"),
    _compare("replica.fetch.wait.max.ms", "replica.lag.time.max.ms", lambda a, b: a <= b,
             "replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms to prevent "
             "frequent changes in ISR"),
    Rule(("queued.max.request.bytes", "socket.request.max.bytes"), _queued),
    Rule(("max.connections.per.ip", "max.connections.per.ip.overrides"), _connections),
    Rule(("connection.failed.authentication.delay.ms", "connections.max.idle.ms"), _auth_delay),
    Rule(("group.share.assignors",), _one_assignor),
    Rule(("share.coordinator.snapshot.update.records.per.snapshot",), _snapshot_records),
    # Gone in 4.0, with the key; 3.9 added a "to" to 3.8's words.
    Rule(_COMMIT_ACKS, _commit_acks("must be greater or equal -1 and less or equal to"), until=(3, 9)),
    Rule(_COMMIT_ACKS, _commit_acks("must be greater or equal to -1 and less or equal to"), (3, 9), _KAFKA_4),
    *(_compare(a, b, op[1], f"{a} {_WORDS_3[op[0]]} {b}", until=_KAFKA_4) for a, op, b in _GROUP_PAIRS_3),
    *(_compare(a, b, op[1], f"{a} {_WORDS_4[op[0]]} {b}", since=_KAFKA_4) for a, op, b in _GROUP_PAIRS),
)


def _at_most_brokers(key: str, why: str) -> Rule:
    def check(eff: Effective, brokers: int | None) -> str | None:
        rf = eff.number(key)
        if rf is None or brokers is None or not brokers or rf <= brokers:
            return None
        return f"{key}={rf} is more than the {brokers} brokers: {why} ({eff.shown(key)})"
    return Rule((key,), check)


def _isr_at_most_rf(isr_key: str, rf_key: str, why: str) -> Rule:
    def check(eff: Effective, _: int | None) -> str | None:
        isr, rf = eff.number(isr_key), eff.number(rf_key)
        if isr is None or rf is None or isr <= rf:
            return None
        return f"{isr_key}={isr} is more than {rf_key}={rf}: {why} ({eff.shown(isr_key, rf_key)})"
    return Rule((isr_key, rf_key), check)


def _unlimited_is_minus_one(key: str) -> Rule:
    def check(eff: Effective, _: int | None) -> str | None:
        value = eff.number(key)
        if value is None or value >= -1:
            return None
        return f"{key}={value}: Kafka reads any negative value as unlimited; write -1 for unlimited"
    return Rule((key,), check)


def _at_least_one(key: str, why: str) -> Rule:
    def check(eff: Effective, _: int | None) -> str | None:
        value = eff.number(key)
        return None if value is None or value >= 1 else f"{key}={value}: {why} ({eff.shown(key)})"
    return Rule((key,), check)


_INTERNAL = "the internal topic is never created, and what needs it never works"
_NO_ACKS = "every acks=all write to it would fail with NOT_ENOUGH_REPLICAS"
BOT_RULES: tuple[Rule, ...] = (
    Rule(("broker.heartbeat.interval.ms", "broker.session.timeout.ms"), _heartbeat),
    _at_most_brokers("offsets.topic.replication.factor", f"{_INTERNAL} (consumer groups find no coordinator)"),
    _at_most_brokers("transaction.state.log.replication.factor", f"{_INTERNAL} (no transaction can start)"),
    _at_most_brokers("share.coordinator.state.topic.replication.factor", f"{_INTERNAL} (share groups)"),
    _at_most_brokers("default.replication.factor",
                     "every topic created without a replication factor of its own would fail"),
    _at_least_one("default.replication.factor", "a replication factor must be at least 1"),
    _isr_at_most_rf("transaction.state.log.min.isr", "transaction.state.log.replication.factor",
                    f"the transaction state topic is written with acks=all, so {_NO_ACKS}"),
    _isr_at_most_rf("share.coordinator.state.topic.min.isr", "share.coordinator.state.topic.replication.factor",
                    f"the share-group state topic is written with acks=all, so {_NO_ACKS}"),
    _isr_at_most_rf("min.insync.replicas", "offsets.topic.replication.factor",
                    "the offsets topic takes the broker-wide min.insync.replicas and offset commits are written with "
                    "acks=all, so every commit would fail"),
    *(_unlimited_is_minus_one(k) for k in (*_RETENTION, "log.retention.bytes")),
    _at_least_one("message.max.bytes", "the brokers would refuse every record batch"),
)


def _min_isr_on_topics(eff: Effective, brokers: int | None, inherited_rfs: Sequence[int]) -> str | None:
    """The broker-wide min ISR applies to every topic without its own: the existing ones (their
    replication factors), the ones created with the default replication factor, and none can have
    more replicas than there are brokers."""
    isr, default_rf = eff.number("min.insync.replicas"), eff.number("default.replication.factor")
    limits = [*inherited_rfs, *([int(default_rf)] if default_rf is not None else []), *([brokers] if brokers else [])]
    if isr is None or not limits or isr <= min(limits):
        return None
    return (f"min.insync.replicas={isr} is more than {min(limits)}, the smallest replication factor it would apply "
            "to (topics using the broker default, default.replication.factor, the broker count): every acks=all "
            f"producer to them would fail ({eff.shown('min.insync.replicas', 'default.replication.factor')})")


def cross_problems(model: BrokerConfigModel, eff: Effective, changed: Collection[str], *, brokers: int | None,
                   inherited_rfs: Sequence[int] = ()) -> list[str]:
    """Every rule that involves a changed key and that the resulting config breaks, in Kafka's words
    where Kafka has words for it."""
    problems: list[str] = []
    for rule in (*START_RULES, *BOT_RULES):
        if not any(k in changed for k in rule.keys) or not rule.applies_to(model):
            continue
        problem = rule.check(eff, brokers)
        if problem and problem not in problems:
            problems.append(problem)
    if "min.insync.replicas" in changed or "default.replication.factor" in changed:
        problem = _min_isr_on_topics(eff, brokers, inherited_rfs)
        if problem:
            problems.append(problem)
    return problems
