"""The lag report's JSON written straight from a ``LagSnapshot``'s lists: the document
``LagReport.model_dump_json()`` would give (same fields, same order, same Redis key; other replicas,
``/kafka lag`` and ``/metrics`` read it with ``LagReport.model_validate_json`` as before), without
building the 100,000 ``PartitionLag`` models first. Profiled, those models were about a third of
a poll's CPU and most of its memory peak (BENCHMARKS.md, "Lag poll profile").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handlers.alerting.lag_models import SecondsFrom

if TYPE_CHECKING:
    from handlers.alerting.lag_snapshot import LagSnapshot

_CAUGHT_UP, _TABLE, _RECORD, _UNKNOWN = (f'"{s.value}"' for s in (
    SecondsFrom.CAUGHT_UP, SecondsFrom.TABLE, SecondsFrom.RECORD, SecondsFrom.UNKNOWN))


@dataclass(frozen=True)
class LagDocument:
    """What ``LagReports.save`` stores: the cluster and its report as JSON text."""

    cluster: str
    text: str

    def model_dump_json(self) -> str:
        return self.text


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _seconds(value: float) -> str:
    return json.dumps(max(0.0, value))


def lag_document(snapshot: LagSnapshot) -> LagDocument:
    quoted: dict[str, str] = {}

    def q(text: str) -> str:
        found = quoted.get(text)
        if found is None:
            found = quoted[text] = _quote(text)
        return found

    groups: list[str] = []
    now = snapshot.now
    for index, group in enumerate(snapshot.groups):
        commit = snapshot.commits.get(group.group)
        members = "[" + ",".join(m.model_dump_json() for m in group.members) + "]"
        head = (f'{{"group":{q(group.group)},"state":{q(group.state)},'
                f'"simple_consumer":{"true" if group.protocol_type == "" else "false"},"members":{members},')
        if commit is None or commit.error is not None:
            error = commit.error if commit is not None and commit.error else "no answer for this group"
            groups.append(f'{head}"partitions":[],"error":{_quote(error)}}}')
            continue
        owner = {tp: m for m in group.members for tp in m.partitions}
        pairs: list[str] = []
        for topic, parts in sorted(commit.offsets.items()):
            qt = q(topic)
            for partition, offset in sorted(parts.items()):
                entry = snapshot.readers.get((topic, partition))
                i = entry.place(index) if entry is not None else None
                if entry is None or i is None:
                    continue
                lag, seconds = entry.lags[i], entry.seconds(i, now)
                if lag == 0:
                    source, shown = _CAUGHT_UP, _seconds(seconds if seconds == seconds else 0.0)
                elif seconds != seconds:
                    source, shown = _UNKNOWN, "null"
                else:
                    source, shown = (_RECORD if entry.recorded(i) else _TABLE), _seconds(seconds)
                member = owner.get((topic, partition))
                who = (f'{q(member.member_id)},"client_id":{q(member.client_id)},"host":{q(member.host)}'
                       if member is not None else '"","client_id":"","host":""')
                pairs.append(f'{{"topic":{qt},"partition":{partition},"committed":{offset},'
                             f'"end":{snapshot.ends[(topic, partition)][1]},"lag":{lag},"seconds":{shown},'
                             f'"seconds_from":{source},"member_id":{who}}}')
        groups.append(f'{head}"partitions":[{",".join(pairs)}],"error":null}}')
    by_topic: dict[str, list[str]] = {}
    for (topic, partition), (earliest, latest) in snapshot.ends.items():
        by_topic.setdefault(topic, []).append(f'"{partition}":[{earliest},{latest}]')
    offsets = ",".join(f'{q(topic)}:{{{",".join(parts)}}}' for topic, parts in by_topic.items())
    taken_at = json.dumps(snapshot.taken_at.isoformat().replace("+00:00", "Z"))
    text = (f'{{"cluster":{q(snapshot.cluster)},"taken_at":{taken_at},'
            f'"poll_seconds":{json.dumps(snapshot.poll_seconds)},'
            f'"groups":[{",".join(groups)}],"log_offsets":{{{offsets}}},"error":null}}')
    return LagDocument(cluster=snapshot.cluster, text=text)
