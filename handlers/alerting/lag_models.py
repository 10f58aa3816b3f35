"""A lag poll's result, as every reader sees it: ``/kafka lag``, the lag alerts and ``/metrics``.

The numbers follow Kafka Lag Exporter's metrics (docs/kafka-ops.md §1.1): per group and
partition the committed offset, the lag in records and in seconds; per group the max and the sum;
per partition the earliest and latest offsets. ``seconds_from`` says how a seconds value was
obtained, because the two ways differ in what they promise: ``table`` is interpolated on the
sampled log-end line, ``record`` is the timestamp of the record at the committed offset.

Stored, a report is one of two JSON forms, both read by ``LagReport.model_validate_json``: the
models' own dump (no ``format`` key: written by replicas before the compact form, and for a failed
poll), and the compact form ``lag_document`` writes (``"format": 2``), which holds per group and
topic only the partitions, committed offsets, seconds and a letter per seconds source; the end, the
lag and the member are read back from ``log_offsets`` and the group's members (what they were
computed from), so the document is about a fifth of the first form's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, model_validator

from handlers.ports import GroupMember

SHOWN_PARTITIONS = 10  # in an alert's facts: the worst ones


class SecondsFrom(StrEnum):
    CAUGHT_UP = "caught_up"
    TABLE = "table"
    RECORD = "record"
    UNKNOWN = "unknown"  # no sample line covers it and the record could not be read (yet)


COMPACT_FORMAT = 2
# The compact form's letter for each seconds source.
SOURCE_LETTERS = {SecondsFrom.CAUGHT_UP: "c", SecondsFrom.TABLE: "t", SecondsFrom.RECORD: "r",
                  SecondsFrom.UNKNOWN: "u"}
_SOURCES = {letter: source for source, letter in SOURCE_LETTERS.items()}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PartitionLag(_Frozen):
    topic: str
    partition: int
    committed: int
    end: int
    lag: int
    seconds: float | None
    seconds_from: SecondsFrom
    member_id: str = ""
    client_id: str = ""
    host: str = ""

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"


_PARTITIONS = TypeAdapter(tuple[PartitionLag, ...])


class GroupLag(_Frozen):
    group: str
    state: str = ""
    simple_consumer: bool = False  # commits offsets without group membership (protocol type "")
    members: tuple[GroupMember, ...] = ()
    partitions: tuple[PartitionLag, ...] = ()
    error: str | None = None  # this group could not be read; its alert is left as it was

    @property
    def max_lag(self) -> int:
        return max((p.lag for p in self.partitions), default=0)

    @property
    def sum_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def max_lag_seconds(self) -> float | None:
        known = [p.seconds for p in self.partitions if p.seconds is not None]
        return max(known) if known else None

    def topic_sum_lag(self) -> dict[str, int]:
        sums: dict[str, int] = {}
        for p in self.partitions:
            sums[p.topic] = sums.get(p.topic, 0) + p.lag
        return sums

    def worst(self, count: int = SHOWN_PARTITIONS) -> list[PartitionLag]:
        return sorted(self.partitions, key=lambda p: (-(p.seconds or 0.0), -p.lag, p.topic, p.partition))[:count]

    def summary(self) -> str:
        if self.error is not None:
            return f"group {self.group}: not read ({self.error})"
        worst = self.worst(1)
        members = f"{len(self.members)} member{'s' if len(self.members) != 1 else ''}"
        if not worst or worst[0].lag == 0:
            return f"group {self.group} is caught up ({members}, {self.state or 'state unknown'})"
        top = worst[0]
        seconds = f", {format_seconds(top.seconds)}" if top.seconds is not None else ""
        return (f"group {self.group} is {top.lag:,} records{seconds} behind on {top.name}; total lag "
                f"{self.sum_lag:,} over {len(self.partitions)} partitions ({members}, {self.state or 'state unknown'})")

    def facts(self) -> dict[str, Any]:
        """What an alert keeps for its message: the worst partitions and the members."""
        return {
            "partitions": [
                {"partition": p.name, "lag": p.lag, "seconds": p.seconds, "member": p.client_id or p.member_id}
                for p in self.worst()
            ],
            "members": [{"client_id": m.client_id, "host": m.host, "partitions": len(m.partitions)}
                        for m in self.members[:SHOWN_PARTITIONS]],
            "state": self.state,
            "max_lag": self.max_lag,
            "sum_lag": self.sum_lag,
        }


class LagReport(_Frozen):
    cluster: str
    taken_at: datetime
    poll_seconds: float
    groups: tuple[GroupLag, ...] = ()
    log_offsets: dict[str, dict[int, tuple[int, int]]] = {}  # topic -> partition -> (earliest, latest)
    error: str | None = None  # the poll as a whole failed (e.g. Kafka unreachable)

    def group(self, group_id: str) -> GroupLag | None:
        return next((g for g in self.groups if g.group == group_id), None)

    @model_validator(mode="before")
    @classmethod
    def _from_compact(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "format" not in data:
            return data
        if data["format"] != COMPACT_FORMAT:
            raise ValueError(f"lag report format {data['format']!r} is not one this bot reads (it reads the "
                             f"models' form and format {COMPACT_FORMAT}): written by a newer replica?")
        try:
            return _expanded(data)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ValueError(f"a compact lag report (format {COMPACT_FORMAT}) whose parts do not match: "
                             f"{type(exc).__name__}: {exc}") from exc


def _expanded(data: dict[str, Any]) -> dict[str, Any]:
    """The models' form of a compact document. A group's pairs become ``PartitionLag`` models
    group by group, so only one group's dicts exist at a time: at 100,000 pairs the list of every
    pair's dict was as large as the models."""
    ends: dict[Any, dict[Any, Any]] = data.get("log_offsets") or {}
    groups = [{**{k: v for k, v in group.items() if k != "topics"},
               "partitions": _PARTITIONS.validate_python(list(compact_partitions(group, ends)))}
              for group in data.get("groups") or ()]
    return {**{k: v for k, v in data.items() if k != "format"}, "groups": groups}


def compact_partitions(group: dict[str, Any], ends: dict[Any, dict[Any, Any]]) -> Iterator[dict[str, Any]]:
    """A compact group's pairs in the models' form (``PartitionLag``'s fields), one at a time: the
    end from ``log_offsets``, the lag from that end (``end - committed``, clamped at 0, as the
    poller computes it), the member from the group's members' assignments."""
    owner = {(t, p): m for m in group.get("members") or () for t, p in m.get("partitions") or ()}
    for topic, columns in (group.get("topics") or {}).items():
        latest = ends[topic]
        for partition, committed, seconds, letter in zip(columns["partitions"], columns["committed"],
                                                         columns["seconds"], columns["seconds_from"], strict=True):
            end = (latest[str(partition)] if str(partition) in latest else latest[partition])[1]
            member = owner.get((topic, partition)) or {}
            end, committed = int(end), int(committed)
            yield {
                "topic": str(topic), "partition": int(partition), "committed": committed, "end": end,
                "lag": max(0, end - committed), "seconds": None if seconds is None else float(seconds),
                "seconds_from": _SOURCES[letter], "member_id": str(member.get("member_id", "")),
                "client_id": str(member.get("client_id", "")), "host": str(member.get("host", "")),
            }


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "? s"
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"
