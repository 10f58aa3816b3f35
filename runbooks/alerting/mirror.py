"""MirrorMaker 2 alert rules, pure: which connectors and tasks of a KafkaMirrorMaker2 are FAILED (read
from its ``status.connectors``, Connect's own REST status: Strimzi keeps ``Ready=True`` next to a
FAILED task), and how far a mirror's target is behind its source.

Subjects: ``mirror/<name>/<connector>`` for a connector, ``mirror/<name>/<connector>/task-<id>`` for a
task (one alert each: restarting one task is a different action from restarting a connector), and
``mirror/<name>`` for a mirror's lag and for its canary.

Lag in records is measured the way ``/kafka mirror status`` shows it: per mirrored partition, the
source's end offset minus the end offset of its remote topic on the target. It assumes the remote
partition's offsets started where the source's did (MirrorMaker 2 copies from the earliest offset,
so this holds for topics mirrored since their creation; a topic whose head had already been deleted
by retention when mirroring began reads that many records too far behind, never too little).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

FAILED = "FAILED"
TRACE_CHARS = 300  # of a trace's first line, in an alert


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class TaskHealth(_Frozen):
    id: int
    state: str
    trace: str | None = None
    worker: str | None = None


class ConnectorHealth(_Frozen):
    """One connector of a KafkaMirrorMaker2 as Connect reports it."""

    name: str
    state: str
    trace: str | None = None
    tasks: tuple[TaskHealth, ...] = ()


class MirrorFailure(_Frozen):
    """A FAILED connector (``task`` None) or task, with what a person needs to act on it."""

    mirror: str
    connector: str
    task: int | None = None
    first_line: str
    restart_annotation: str  # strimzi.io/restart-connector[-task]=<value>, as Strimzi reads it

    @property
    def subject(self) -> str:
        base = f"mirror/{self.mirror}/{self.connector}"
        return base if self.task is None else f"{base}/task-{self.task}"


def first_line(trace: str | None) -> str:
    """The trace's first line (the exception and its message), clipped: the rest is the stack."""
    line = next((part.strip() for part in (trace or "").splitlines() if part.strip()), "")
    if not line:
        return "Connect gave no trace"
    return line if len(line) <= TRACE_CHARS else line[:TRACE_CHARS - 1] + "…"


def mirror_failures(mirror: str, connectors: Sequence[ConnectorHealth]) -> list[MirrorFailure]:
    """Every FAILED connector and every FAILED task of ``mirror``. A FAILED connector's tasks are
    reported too when they failed on their own account (Connect keeps each task's own state)."""
    found: list[MirrorFailure] = []
    for connector in connectors:
        if connector.state.upper() == FAILED:
            found.append(MirrorFailure(
                mirror=mirror, connector=connector.name, first_line=first_line(connector.trace),
                restart_annotation=f"strimzi.io/restart-connector={connector.name}:includeTasks,onlyFailed"))
        for task in connector.tasks:
            if task.state.upper() == FAILED:
                found.append(MirrorFailure(
                    mirror=mirror, connector=connector.name, task=task.id, first_line=first_line(task.trace),
                    restart_annotation=f"strimzi.io/restart-connector-task={connector.name}:{task.id}"))
    return found


# -- lag ------------------------------------------------------------------------------------------


def remote_topic(topic: str, source_alias: str, *, identity: bool, separator: str = ".") -> str:
    """The name a source topic gets on the target: ``<alias><separator><topic>`` under
    DefaultReplicationPolicy, the same name under IdentityReplicationPolicy."""
    return topic if identity else f"{source_alias}{separator}{topic}"


class PartitionLag(_Frozen):
    topic: str  # the source topic
    partition: int
    source_end: int
    target_end: int | None  # None: the remote partition does not exist (yet)
    age_s: float | None = None  # how old its oldest record not on the target is, when read

    @property
    def records(self) -> int:
        return max(0, self.source_end - (self.target_end or 0))


class MirrorLag(_Frozen):
    """How far one mirror's target is behind, over its mirrored partitions."""

    mirror: str
    partitions: tuple[PartitionLag, ...] = ()
    seconds: float | None = None  # the age of the oldest record not yet on the target, when read

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    def worst(self, count: int = 5) -> list[PartitionLag]:
        behind = [p for p in self.partitions if p.records > 0]
        return sorted(behind, key=lambda p: (-p.records, p.topic, p.partition))[:count]

    @property
    def missing_remote(self) -> list[str]:
        """Source topics with records but no remote partition on the target at all."""
        return sorted({p.topic for p in self.partitions if p.target_end is None and p.source_end > 0})


def mirror_lag(
    mirror: str, source_ends: Mapping[tuple[str, int], int], target_ends: Mapping[tuple[str, int], int],
    source_alias: str, *, identity: bool, separator: str = ".",
) -> MirrorLag:
    """Per source partition, its end offset against its remote partition's on the target."""
    rows = []
    for (topic, partition), end in sorted(source_ends.items()):
        remote = (remote_topic(topic, source_alias, identity=identity, separator=separator), partition)
        rows.append(PartitionLag(topic=topic, partition=partition, source_end=end, target_end=target_ends.get(remote)))
    return MirrorLag(mirror=mirror, partitions=tuple(rows))


UNCOPIED_AGES_READ = 20  # lagging partitions whose oldest uncopied record's time is read, the worst first


def uncopied_positions(lag: MirrorLag) -> list[tuple[str, int, int]]:
    """Where the oldest record not on the target yet is, on the source, for the worst lagging
    partitions: the remote partition's end offset (offsets match while the source kept its records
    from where mirroring began, see the module's note)."""
    return [(p.topic, p.partition, p.target_end or 0) for p in lag.worst(UNCOPIED_AGES_READ)]


def with_ages(lag: MirrorLag, stamps: Mapping[tuple[str, int, int], int] | None, now_ms: float) -> MirrorLag:
    """``lag`` with the age of each lagging partition's oldest uncopied record (``stamps``: record
    times in ms by position, as read at ``uncopied_positions``; None: they could not be read) and the
    mirror's ``seconds``, the oldest of them: 0 when nothing is behind, None when behind but unread."""
    if not any(p.records for p in lag.partitions):
        return lag.model_copy(update={"seconds": 0.0})
    if not stamps:
        return lag.model_copy(update={"seconds": None})
    rows = []
    for p in lag.partitions:
        stamp = stamps.get((p.topic, p.partition, p.target_end or 0)) if p.records else None
        rows.append(p if stamp is None else p.model_copy(update={"age_s": max(0.0, (now_ms - stamp) / 1000)}))
    ages = [p.age_s for p in rows if p.age_s is not None]
    return lag.model_copy(update={"partitions": tuple(rows), "seconds": max(ages) if ages else None})


def merge_lags(mirror: str, lags: Sequence[MirrorLag]) -> MirrorLag:
    """One mirror's lag over its several sources: the partitions of each, the oldest age of any."""
    seconds = [lag.seconds for lag in lags if lag.seconds is not None]
    return MirrorLag(mirror=mirror, partitions=tuple(p for lag in lags for p in lag.partitions),
                     seconds=max(seconds) if seconds else None)


def lag_over(rule_records: int | None, rule_seconds: float | None, lag: MirrorLag) -> list[str]:
    """The thresholds ``lag`` is over, worded for the alert (empty: not over any)."""
    reasons = []
    if rule_records is not None and lag.records >= rule_records:
        reasons.append(f"≥ {rule_records:,} records")
    if rule_seconds is not None and lag.seconds is not None and lag.seconds >= rule_seconds:
        reasons.append(f"≥ {rule_seconds:g} s")
    return reasons


# MirrorMaker 2's default topics.exclude (DefaultTopicFilter), and the topics it never copies.
DEFAULT_EXCLUDE = (r".*[\-\.]internal", r".*\.replica", r"__.*")


def mirrored_topics(topics: Sequence[str], pattern: str, exclude: Sequence[str] = DEFAULT_EXCLUDE) -> list[str]:
    """The source topics a mirror copies: ``topicsPattern`` (comma-separated regexes, each matched
    against the whole name, as MirrorMaker 2 does), minus its excludes and heartbeats. A pattern
    that is no regular expression matches nothing (the operator refuses that resource anyway)."""
    import re

    def compiled(raw: Sequence[str]) -> list[re.Pattern[str]]:
        found = []
        for part in raw:
            part = part.strip()
            if part:
                try:
                    found.append(re.compile(part))
                except re.error:
                    continue
        return found

    includes, excludes = compiled(pattern.split(",")), compiled(exclude)
    return sorted(t for t in topics if t != "heartbeats" and any(p.fullmatch(t) for p in includes)
                  and not any(p.fullmatch(t) for p in excludes))


# -- the canary -----------------------------------------------------------------------------------


class CanaryState(_Frozen):
    """What the monitor knows of one mirror's canary, kept between polls and replicas (the monitor
    lease moves): when it sent its canary records, when it last saw one on the target and how long that
    one took, and where its reading of the remote canary topic stopped."""

    cluster: str  # the target cluster, whose monitor sends the canary
    mirror: str
    source: str  # the source alias
    topic: str  # the canary topic on the source
    remote_topic: str  # its name on the target
    watching_since: datetime  # the first canary the monitor sent (silence counts from there)
    last_sent_at: datetime | None = None
    last_arrival_at: datetime | None = None  # when the monitor saw the newest canary record on the target
    last_latency_ms: float | None = None  # that record: seen on the target minus produced on the source
    positions: dict[int, int] = Field(default_factory=dict)  # remote partition -> next offset to read
    last_error: str | None = None  # the last probe that failed, and why


class CanaryArrival(_Frozen):
    sent_ms: float  # the produce time the record carries
    seen_ms: float  # when the monitor read it on the target

    @property
    def latency_ms(self) -> float:
        return max(0.0, self.seen_ms - self.sent_ms)


def canary_due(state: CanaryState | None, now: datetime, every_s: float) -> bool:
    return state is None or state.last_sent_at is None or (now - state.last_sent_at).total_seconds() >= every_s


def after_probe(state: CanaryState, *, sent_at: datetime | None, arrivals: Sequence[CanaryArrival],
                positions: Mapping[int, int], error: str | None = None) -> CanaryState:
    """The state after one probe: the newest record seen (by its produce time) gives the arrival."""
    update: dict[str, object] = {"positions": dict(positions), "last_error": error}
    if sent_at is not None:
        update["last_sent_at"] = sent_at
    if arrivals:
        newest = max(arrivals, key=lambda a: a.sent_ms)
        seen = datetime.fromtimestamp(newest.seen_ms / 1000, UTC)
        if state.last_arrival_at is None or seen >= state.last_arrival_at:
            update["last_arrival_at"] = seen
            update["last_latency_ms"] = newest.latency_ms
    return state.model_copy(update=update)


def canary_silence_s(state: CanaryState, now: datetime) -> float:
    """Seconds without a canary record arriving: since the last one, or since the monitor began."""
    since = state.last_arrival_at or state.watching_since
    return max(0.0, (now - since).total_seconds())


def canary_text(state: CanaryState, now: datetime) -> str:
    """The canary's figures as ``/kafka mirror status`` and the alert say them."""
    if state.last_arrival_at is None:
        return (f"no canary record has arrived on {state.remote_topic} since the monitor began sending them "
                f"{state.watching_since:%Y-%m-%d %H:%M:%S} UTC")
    latency = f"{state.last_latency_ms:,.0f} ms" if state.last_latency_ms is not None else "unknown"
    ago = (now - state.last_arrival_at).total_seconds()
    return (f"last arrived {state.last_arrival_at:%Y-%m-%d %H:%M:%S} UTC ({ago:,.0f} s ago), "
            f"latency then {latency}")
