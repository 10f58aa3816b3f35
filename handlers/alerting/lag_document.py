"""The lag report's JSON written straight from a ``LagSnapshot``'s arrays, in the compact form
``lag_models`` documents (``"format": 2``): per group and topic the partitions, committed offsets,
seconds and a letter per seconds source in parallel lists, without the end, the lag and the member
of every pair, which the readers take back from ``log_offsets`` and the group's members. Other
replicas, ``/kafka lag`` and ``/metrics`` read it with ``LagReport.model_validate_json`` as before,
into the same models. The 100,000 ``PartitionLag`` models are never built here (profiled, they
were about a third of a poll's CPU; BENCHMARKS.md, "Lag poll profile"), and the text is joined once
from its pieces: at 100,000 pairs it is about 3 MB where the models' form was 16 MB, and building it
held three copies of that (BENCHMARKS.md, issue #17 §3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handlers.alerting.lag_models import COMPACT_FORMAT, SOURCE_LETTERS, SecondsFrom

if TYPE_CHECKING:
    from handlers.alerting.lag_snapshot import LagSnapshot

_CAUGHT_UP, _TABLE, _RECORD, _UNKNOWN = (SOURCE_LETTERS[s] for s in (
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


def lag_document(snapshot: LagSnapshot) -> LagDocument:
    quoted: dict[str, str] = {}

    def q(text: str) -> str:
        found = quoted.get(text)
        if found is None:
            found = quoted[text] = _quote(text)
        return found

    taken_at = json.dumps(snapshot.taken_at.isoformat().replace("+00:00", "Z"))
    out: list[str] = [f'{{"format":{COMPACT_FORMAT},"cluster":{q(snapshot.cluster)},"taken_at":{taken_at},'
                      f'"poll_seconds":{json.dumps(snapshot.poll_seconds)},"groups":[']
    now, readers = snapshot.now, snapshot.readers
    for index, group in enumerate(snapshot.groups):
        if index:
            out.append(",")
        commit = snapshot.commits.get(group.group)
        members = ",".join(m.model_dump_json() for m in group.members)
        out.append(f'{{"group":{q(group.group)},"state":{q(group.state)},'
                   f'"simple_consumer":{"true" if group.protocol_type == "" else "false"},"members":[{members}],')
        if commit is None or commit.error is not None:
            error = commit.error if commit is not None and commit.error else "no answer for this group"
            out.append(f'"topics":{{}},"error":{_quote(error)}}}')
            continue
        topics: list[str] = []
        for topic, parts in sorted(commit.offsets.items()):
            partitions: list[str] = []
            committed: list[str] = []
            seconds: list[str] = []
            sources: list[str] = []
            for partition, offset in sorted(parts.items()):
                entry = readers.get((topic, partition))
                i = entry.place(index) if entry is not None else None
                if entry is None or i is None:  # no commit (-1) or the end offset could not be read
                    continue
                partitions.append(str(partition))
                committed.append(str(offset))
                if entry.lags[i] == 0:
                    sources.append(_CAUGHT_UP)
                    seconds.append("0")
                    continue
                behind = entry.seconds(i, now)
                if behind != behind:
                    sources.append(_UNKNOWN)
                    seconds.append("null")
                else:
                    sources.append(_RECORD if entry.recorded(i) else _TABLE)
                    seconds.append(repr(behind))  # finite and >= 0: repr is its JSON
            if partitions:
                topics.append(f'{q(topic)}:{{"partitions":[{",".join(partitions)}],'
                              f'"committed":[{",".join(committed)}],"seconds":[{",".join(seconds)}],'
                              f'"seconds_from":"{"".join(sources)}"}}')
        out.append(f'"topics":{{{",".join(topics)}}},"error":null}}')
    out.append('],"log_offsets":{')
    by_topic: dict[str, list[str]] = {}
    for (topic, partition), (earliest, latest) in snapshot.ends.items():
        by_topic.setdefault(topic, []).append(f'"{partition}":[{earliest},{latest}]')
    out.append(",".join(f'{q(topic)}:{{{",".join(parts)}}}' for topic, parts in by_topic.items()))
    out.append('},"error":null}')
    return LagDocument(cluster=snapshot.cluster, text="".join(out))
