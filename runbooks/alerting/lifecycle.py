"""Alerts: the rules (a threshold held for a ``for`` window, per condition), and the lifecycle of
one alert as a pure decision, the same way ``runbooks.engine.decide.decide`` is for runs.

An alert is keyed by (cluster, condition, subject), e.g. (prod-east, under_replicated, broker-2).
Its life, all of it stored (Redis) so every replica and every restart sees the same thing:

  (nothing) --active--> PENDING --held `for`--> FIRING: post one message
  FIRING --active--> FIRING: update that message in place (value, since, trend), rate-limited
  FIRING --clear--> RESOLVED: update it to "resolved after <duration>"
  RESOLVED --active again within the cooldown--> PENDING, then FIRING in the *same* message
        (a flap: reopened, never posted again); after the cooldown a new occurrence posts anew
  PENDING --clear--> (nothing): it never fired, nobody was told

Snooze (by someone, until a time) mutes: an alert that fires while snoozed is recorded but not
posted; if it still fires when the snooze ends, it is posted then. A message already posted is
still edited (edits do not notify anyone), so the channel shows who snoozed it and until when.

Callers evaluate a subject only when they know its state: a poll that failed for one consumer
group leaves that group's alert untouched rather than resolving it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Condition(StrEnum):
    BROKER_DOWN = "broker_down"  # subject broker-<id>: fenced, or not registered although its pod exists
    UNDER_REPLICATED = "under_replicated"  # subject broker-<id>: its replicas are missing from ISRs
    UNDER_MIN_ISR = "under_min_isr"  # subject partitions
    OFFLINE_PARTITIONS = "offline_partitions"  # subject partitions
    QUORUM = "quorum"  # subject controller-quorum
    KAFKA_UNREACHABLE = "kafka_unreachable"  # subject admin: no snapshot at all
    CONSUMER_LAG = "consumer_lag"  # subject group:<group id>
    KAFKA_NOT_READY = "kafka_not_ready"  # subject kafka/<name>
    KAFKA_WARNING = "kafka_warning"  # subject the warning's reason
    POD_CRASHING = "pod_crashing"  # subject the pod: restarting or crash looping
    STRIMZI_RESTART = "strimzi_restart"  # subject the pod: the operator rolls it (an event)
    UNOWNED_THROTTLES = "unowned_throttles"  # subject replication-throttles: set while no moving run is active
    MIRROR_FAILED = "mirror_failed"  # subject mirror/<name>/<connector>[/task-<id>]: FAILED in Connect's status
    MIRROR_LAG = "mirror_lag"  # subject mirror/<name>: the target's remote topics behind the source
    MIRROR_CANARY = "mirror_canary"  # subject mirror/<name>: no canary record arrived on the target for too long


HEALTH_CONDITIONS = frozenset({
    Condition.BROKER_DOWN, Condition.UNDER_REPLICATED, Condition.UNDER_MIN_ISR, Condition.OFFLINE_PARTITIONS,
    Condition.QUORUM, Condition.KAFKA_UNREACHABLE,
})
# What a runbook's own rolls cause on purpose: these wait `during_run_for_s` while a run is active.
ROLL_CONDITIONS = HEALTH_CONDITIONS | {Condition.POD_CRASHING, Condition.STRIMZI_RESTART}


class AlertKey(_Frozen):
    cluster: str
    condition: Condition
    subject: str

    @property
    def id(self) -> str:
        return alert_id(self.cluster, self.condition, self.subject)


def alert_id(cluster: str, condition: Condition | str, subject: str) -> str:
    """A short stable id people can type (``/kafka snooze a-1b2c3d4e 2h``): the same key always
    gets the same id, so a snooze holds across occurrences and across replicas."""
    digest = hashlib.sha256(f"{cluster}\0{condition}\0{subject}".encode()).hexdigest()
    return "a-" + digest[:8]


# -- rules ----------------------------------------------------------------------------------------


class ConditionRule(_Frozen):
    """When a condition becomes an alert: held ``for_s`` seconds; after it resolves, a re-fire
    within ``cooldown_s`` reopens the same message instead of posting a new one."""

    enabled: bool = True
    for_s: float = Field(default=0.0, ge=0)
    cooldown_s: float = Field(default=600.0, ge=0)


class LagRule(ConditionRule):
    """Consumer lag: an absolute threshold in offsets and/or seconds (the group's worst
    partition), and a growth rule for a spike: the group's total lag grew by at least
    ``growth_min_increase`` offsets *and* by ``growth_factor`` times within ``growth_window_s``."""

    for_s: float = Field(default=60.0, ge=0)
    max_lag: int | None = Field(default=None, ge=0)
    max_lag_seconds: float | None = Field(default=300.0, ge=0)
    growth_window_s: float = Field(default=300.0, gt=0)
    growth_min_increase: int | None = Field(default=10_000, ge=1)
    growth_factor: float = Field(default=3.0, ge=1)
    include_groups: str | None = None  # a regex the group id must match (fullmatch)
    exclude_groups: str | None = None


class MirrorLagRule(ConditionRule):
    """MirrorMaker 2 replication lag of one mirror: records the target's remote topics are behind the
    source's topics (summed over the mirrored partitions), and/or the age of the oldest record not
    yet copied. None turns a threshold off."""

    for_s: float = Field(default=60.0, ge=0)
    max_records: int | None = Field(default=10_000, ge=1)
    max_seconds: float | None = Field(default=300.0, gt=0)


class MirrorCanaryRule(ConditionRule):
    """The mirror canary: a timestamped record sent to the mirror's canary topic on the source every
    ``every_s``; the alert when none arrived on the target for ``max_silence_s``. The silence is the
    value held, so ``for_s`` adds nothing by default."""

    every_s: float = Field(default=30.0, gt=0)
    max_silence_s: float = Field(default=300.0, gt=0)


class AlertRules(_Frozen):
    """Every rule of one cluster, with the defaults an SRE would start from (Strimzi's sample
    Prometheus rules fire on URP/offline/under-min-ISR after 10 s; a broker poll every 5 s plus
    Kafka's own 9 s fencing makes a dead broker show within ~15 s)."""

    health_poll_s: float = Field(default=5.0, gt=0)
    lag_poll_s: float = Field(default=15.0, gt=0)
    throttle_poll_s: float = Field(default=60.0, gt=0)  # DescribeConfigs of every broker and topic
    update_interval_s: float = Field(default=30.0, ge=0)  # at most one edit per alert message per this
    # While a runbook mutates the cluster, brokers go down and partitions lose replicas on purpose:
    # health conditions must then hold this long before they are posted.
    during_run_for_s: float = Field(default=180.0, ge=0)
    broker_down: ConditionRule = ConditionRule()
    under_replicated: ConditionRule = ConditionRule()
    under_min_isr: ConditionRule = ConditionRule()
    offline_partitions: ConditionRule = ConditionRule()
    quorum: ConditionRule = ConditionRule(for_s=10.0)
    kafka_unreachable: ConditionRule = ConditionRule(for_s=30.0)
    consumer_lag: LagRule = LagRule()
    kafka_not_ready: ConditionRule = ConditionRule(for_s=60.0)
    kafka_warning: ConditionRule = ConditionRule()
    pod_crashing: ConditionRule = ConditionRule()
    strimzi_restart: ConditionRule = ConditionRule(cooldown_s=0.0)
    # A run that just ended clears its throttles in its cleanup step: 5 min lets it (and a human
    # who set one a moment ago for a move of their own) finish before anyone is told.
    unowned_throttles: ConditionRule = ConditionRule(for_s=300.0)
    # MirrorMaker 2 (KafkaMirrorMaker2 resources in the cluster's namespace): status and lag read every
    # mirror_poll_s. Strimzi keeps Ready=True next to a FAILED task, so the connectors are what is read.
    mirror_poll_s: float = Field(default=15.0, gt=0)
    mirror_failed: ConditionRule = ConditionRule()
    mirror_lag: MirrorLagRule = MirrorLagRule()
    mirror_canary: MirrorCanaryRule = MirrorCanaryRule()

    def rule(self, condition: Condition) -> ConditionRule:
        rule: ConditionRule = getattr(self, condition.value)
        return rule

    def for_window(self, condition: Condition, *, run_active: bool) -> float:
        window = self.rule(condition).for_s
        if run_active and condition in ROLL_CONDITIONS:
            return max(window, self.during_run_for_s)
        return window


# -- the lifecycle --------------------------------------------------------------------------------


class Phase(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class MessageRef(_Frozen):
    """Where an alert's message is: a Slack channel and ts, or a console message id."""

    channel: str | None = None
    id: str


class Observation(_Frozen):
    """A condition seen active right now: the number rules and views use, and what to say."""

    key: AlertKey
    value: float
    detail: str
    facts: dict[str, Any] = Field(default_factory=dict)  # for the view: partitions, members, a next action


class AlertState(_Frozen):
    key: AlertKey
    phase: Phase
    since: datetime  # when the current activity (pending or firing) began
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    value: float = 0.0
    previous_value: float | None = None  # the value the message showed before, for the trend
    peak: float = 0.0
    detail: str = ""
    facts: dict[str, Any] = Field(default_factory=dict)
    occurrence: int = 0  # how many times a new message was due for this key
    flaps: int = 0  # re-fires within the cooldown, shown in the reopened message
    message: MessageRef | None = None
    rendered_at: datetime | None = None
    rendered_value: float | None = None
    snoozed_until: datetime | None = None
    snoozed_by: str | None = None

    @property
    def id(self) -> str:
        return self.key.id

    def snoozed(self, now: datetime) -> bool:
        return self.snoozed_until is not None and now < self.snoozed_until

    @property
    def trend(self) -> str:
        if self.previous_value is None or self.value == self.previous_value:
            return "steady"
        return "rising" if self.value > self.previous_value else "falling"


class Action(StrEnum):
    NONE = "none"
    POST = "post"  # a new message
    UPDATE = "update"  # edit the alert's message in place


class AlertDecision(_Frozen):
    state: AlertState | None  # None: forget the key
    action: Action = Action.NONE


def step(
    state: AlertState | None, seen: Observation | None, *, now: datetime, for_s: float, cooldown_s: float,
    update_interval_s: float,
) -> AlertDecision:
    """One evaluation of one key: ``seen`` is the observation if the condition is active, None if
    it is clear. Returns the state to store and what to do with the channel."""
    if state is not None and state.snoozed_until is not None and not state.snoozed(now):
        state = state.model_copy(update={"snoozed_until": None, "snoozed_by": None})
    if seen is None:
        return _clear(state, now)
    if state is None:
        state = AlertState(key=seen.key, phase=Phase.PENDING, since=now)
    elif state.phase is Phase.RESOLVED:
        cooled = state.resolved_at is None or now - state.resolved_at >= timedelta(seconds=cooldown_s)
        if cooled:  # a new occurrence: it will post a message of its own
            state = state.model_copy(update={"message": None, "flaps": 0, "fired_at": None, "peak": 0.0,
                                             "rendered_value": None, "previous_value": None})
        state = state.model_copy(update={"phase": Phase.PENDING, "since": now})
    state = _observe(state, seen)
    if state.phase is Phase.PENDING:
        if now - state.since < timedelta(seconds=for_s):
            return AlertDecision(state=state)
        return _fire(state, now)
    return _refresh(state, now, update_interval_s)


def _observe(state: AlertState, seen: Observation) -> AlertState:
    return state.model_copy(update={
        "value": seen.value, "peak": max(state.peak, seen.value), "detail": seen.detail, "facts": seen.facts,
    })


def _fire(state: AlertState, now: datetime) -> AlertDecision:
    reopening = state.message is not None
    fired = state.model_copy(update={
        "phase": Phase.FIRING, "fired_at": state.fired_at if reopening else now, "resolved_at": None,
        "flaps": state.flaps + 1 if reopening else 0,
        "occurrence": state.occurrence if reopening else state.occurrence + 1,
    })
    if reopening:
        return AlertDecision(state=_rendered(fired, now), action=Action.UPDATE)
    if state.snoozed(now):
        return AlertDecision(state=fired)  # muted: posted when the snooze ends, if it still fires
    return AlertDecision(state=_rendered(fired, now), action=Action.POST)


def _refresh(state: AlertState, now: datetime, update_interval_s: float) -> AlertDecision:
    if state.message is None:
        if state.snoozed(now):
            return AlertDecision(state=state)
        # Never posted (muted until now, or the post failed): post it now.
        return AlertDecision(state=_rendered(state, now), action=Action.POST)
    changed = state.rendered_value is None or _significant(state.rendered_value, state.value)
    due = state.rendered_at is None or now - state.rendered_at >= timedelta(seconds=update_interval_s)
    if changed and due:
        return AlertDecision(state=_rendered(state, now), action=Action.UPDATE)
    return AlertDecision(state=state)


def _significant(shown: float, now: float) -> bool:
    """Worth an edit: a count that moved, or a measure (seconds, records) that moved by 5 %. A
    stopped consumer's lag grows every poll; its message need not follow every second."""
    return abs(now - shown) >= max(1.0, 0.05 * abs(shown))


def _clear(state: AlertState | None, now: datetime) -> AlertDecision:
    if state is None:
        return AlertDecision(state=None)
    if state.phase is Phase.PENDING and state.message is None and state.fired_at is None:
        # It never fired: forget it, unless someone snoozed it (the snooze must outlive this).
        if state.snoozed(now):
            return AlertDecision(state=state.model_copy(update={"phase": Phase.RESOLVED, "resolved_at": now}))
        return AlertDecision(state=None)
    if state.phase is Phase.RESOLVED:
        return AlertDecision(state=state)
    if state.phase is Phase.PENDING:  # a reopened flap that cleared before its `for`: resolved again
        return AlertDecision(state=state.model_copy(update={"phase": Phase.RESOLVED, "resolved_at": state.resolved_at
                                                       or now}))
    resolved = state.model_copy(update={"phase": Phase.RESOLVED, "resolved_at": now})
    if resolved.message is None:
        return AlertDecision(state=resolved)  # muted all along: there is nothing to edit
    return AlertDecision(state=_rendered(resolved, now), action=Action.UPDATE)


def _rendered(state: AlertState, now: datetime) -> AlertState:
    """Mark the state as shown; the trend a message shows is the change since the previous one."""
    return state.model_copy(update={"rendered_at": now, "rendered_value": state.value,
                                    "previous_value": state.rendered_value})


def snooze(state: AlertState, *, until: datetime, by: str) -> AlertState:
    return state.model_copy(update={"snoozed_until": until, "snoozed_by": by})


def expired(state: AlertState, now: datetime, *, cooldown_s: float, keep_s: float = 86400.0) -> bool:
    """A resolved alert is kept while its cooldown, its snooze and a day of history last."""
    if state.phase is not Phase.RESOLVED or state.snoozed(now):
        return False
    resolved_at = state.resolved_at or state.since
    return now - resolved_at >= timedelta(seconds=max(cooldown_s, keep_s))


def lag_grew(history: Sequence[tuple[float, int]], now: float, rule: LagRule) -> bool:
    """The growth (spike) rule over a group's total lag samples ``(time, lag)``, oldest first: the
    newest grew by at least ``growth_min_increase`` *and* ``growth_factor`` times over the smallest
    value seen within ``growth_window_s`` (the smallest, not the oldest: a dip then a surge counts)."""
    if rule.growth_min_increase is None or len(history) < 2:
        return False
    current = history[-1][1]
    window = [lag for at, lag in history[:-1] if now - at <= rule.growth_window_s]
    if not window:
        return False
    base = min(window)
    return current - base >= rule.growth_min_increase and current >= rule.growth_factor * max(base, 1)
