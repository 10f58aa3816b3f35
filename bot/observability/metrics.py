"""``/metrics`` in the Prometheus text format (version 0.0.4).

The lag metrics keep Kafka Lag Exporter's names and labels (docs/kafka-ops.md §1.1), so the
dashboards and alert rules people already have for it work unchanged; they are rendered from the
latest lag report in Redis, so every replica answers the same whichever one polls. A seconds
value the bot could not tell is exported as NaN, as Lag Exporter does.

The bot's own: runs by state, alerts by condition and phase and those whose post failed, and per
cluster the monitors' last poll durations, skipped (overrun) polls, watch re-lists and which replica
runs the monitors.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from handlers.alerting.lag_models import COMPACT_FORMAT, LagReport, compact_partitions
from runbooks.alerting.lifecycle import AlertState, Phase
from runbooks.engine.models import Run, RunState, StepState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN = "unknown"  # Lag Exporter's value for a member label of a partition no member holds

_HELP = {
    "kafka_consumergroup_group_offset": "Last group consumed (committed) offset of a partition",
    "kafka_consumergroup_group_lag": "Group offset lag of a partition",
    "kafka_consumergroup_group_lag_seconds": "Group time lag of a partition (seconds)",
    "kafka_consumergroup_group_max_lag": "Max group offset lag",
    "kafka_consumergroup_group_max_lag_seconds": "Max group time lag (seconds)",
    "kafka_consumergroup_group_sum_lag": "Sum of group offset lag",
    "kafka_consumergroup_group_topic_sum_lag": "Sum of group offset lag across topic partitions",
    "kafka_partition_latest_offset": "Latest offset of a partition",
    "kafka_partition_earliest_offset": "Earliest offset of a partition",
    "kafka_consumergroup_poll_time_ms": "Group poll time (ms)",
    "kafka_chatops_runs": "Runbook runs by state (active runs, and the most recent finished ones)",
    "kafka_chatops_alerts": "Alerts known to the bot, by cluster, condition and phase",
    "kafka_chatops_alerts_unposted": "Alerts firing, not snoozed, whose message is not in Slack (the post failed)",
    "kafka_chatops_poll_duration_seconds": "Duration of the last monitor poll",
    "kafka_chatops_poll_overruns_total": "Monitor polls skipped because the previous one was still running",
    "kafka_chatops_watch_relists_total": "Kubernetes watches listed again (410 Gone or an error)",
    "kafka_chatops_monitor_leader": "1 when this replica runs the cluster's monitors",
    "kafka_chatops_lag_offsets_streamed": "1 when this replica reads the cluster's committed offsets from "
                                          "__consumer_offsets, 0 when from the admin API",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Exposition:
    """Samples grouped per metric, written with one HELP/TYPE header each."""

    def __init__(self) -> None:
        self._samples: dict[str, list[str]] = {}
        self._types: dict[str, str] = {}

    def add(self, name: str, labels: Mapping[str, object], value: float | int | None, kind: str = "gauge") -> None:
        self._types.setdefault(name, kind)
        rendered = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
        self._samples.setdefault(name, []).append(f"{name}{{{rendered}}} {_number(value)}")

    def declare(self, name: str, kind: str = "gauge") -> None:
        self._types.setdefault(name, kind)
        self._samples.setdefault(name, [])

    def text(self) -> str:
        lines: list[str] = []
        for name, samples in self._samples.items():
            lines.append(f"# HELP {name} {_HELP.get(name, name)}")
            lines.append(f"# TYPE {name} {self._types[name]}")
            lines += samples
        return "\n".join(lines) + "\n"


def add_lag_report(out: Exposition, report: LagReport) -> None:
    cluster = report.cluster
    for name in ("kafka_consumergroup_group_offset", "kafka_consumergroup_group_lag",
                 "kafka_consumergroup_group_lag_seconds", "kafka_consumergroup_group_max_lag",
                 "kafka_consumergroup_group_max_lag_seconds", "kafka_consumergroup_group_sum_lag",
                 "kafka_consumergroup_group_topic_sum_lag", "kafka_partition_latest_offset",
                 "kafka_partition_earliest_offset", "kafka_consumergroup_poll_time_ms"):
        out.declare(name)
    for group in report.groups:
        if group.error is not None:
            continue  # Lag Exporter drops the series of a group it could not read
        for p in group.partitions:
            # As Lag Exporter's source does: the member's host as the client reports it ("/10.0.0.7"),
            # and "unknown" where no member holds the partition.
            labels = {"cluster_name": cluster, "group": group.group, "topic": p.topic, "partition": p.partition,
                      "member_host": p.host or UNKNOWN, "consumer_id": p.member_id or UNKNOWN,
                      "client_id": p.client_id or UNKNOWN}
            out.add("kafka_consumergroup_group_offset", labels, p.committed)
            out.add("kafka_consumergroup_group_lag", labels, p.lag)
            out.add("kafka_consumergroup_group_lag_seconds", labels, p.seconds)
        group_labels = {"cluster_name": cluster, "group": group.group}  # no is_simple_consumer: its README's only
        out.add("kafka_consumergroup_group_max_lag", group_labels, group.max_lag)
        out.add("kafka_consumergroup_group_max_lag_seconds", group_labels, group.max_lag_seconds)
        out.add("kafka_consumergroup_group_sum_lag", {"cluster_name": cluster, "group": group.group}, group.sum_lag)
        for topic, total in sorted(group.topic_sum_lag().items()):
            out.add("kafka_consumergroup_group_topic_sum_lag",
                    {"cluster_name": cluster, "group": group.group, "topic": topic}, total)
    for topic, partitions in sorted(report.log_offsets.items()):
        for partition, (earliest, latest) in sorted(partitions.items()):
            labels = {"cluster_name": cluster, "topic": topic, "partition": partition}
            out.add("kafka_partition_latest_offset", labels, latest)
            out.add("kafka_partition_earliest_offset", labels, earliest)
    out.add("kafka_consumergroup_poll_time_ms", {"cluster_name": cluster}, round(report.poll_seconds * 1000, 1))


def add_runs(out: Exposition, runs: Iterable[Run], *, now: datetime) -> None:
    """The runs counted by cluster and state, and for each run in progress: its step, the steps
    left, and how long its approval has been waiting (the gauges people asked Strimzi for)."""
    runs = list(runs)
    out.declare("kafka_chatops_runs")
    for (cluster, state), count in sorted(Counter((r.cluster, r.state.value) for r in runs).items()):
        out.add("kafka_chatops_runs", {"cluster": cluster, "state": state}, count)
    active = sorted((r for r in runs if not r.state.terminal), key=lambda r: (r.cluster, r.id))
    for name in ("kafka_chatops_run_in_progress", "kafka_chatops_run_steps_left",
                 "kafka_chatops_approval_waiting_seconds"):
        out.declare(name)
    for run in active:
        step = run.current_step
        labels = {"cluster": run.cluster, "run_id": run.id, "runbook": run.runbook}
        out.add("kafka_chatops_run_in_progress",
                {**labels, "state": run.state.value, "step": step.id if step else ""}, 1)
        left = sum(1 for s in run.steps if s.state not in (StepState.DONE, StepState.SKIPPED))
        out.add("kafka_chatops_run_steps_left", labels, left)
        if run.state is RunState.AWAITING_APPROVAL and run.approval is not None:
            waited = max((now - run.approval.requested_at).total_seconds(), 0.0)
            out.add("kafka_chatops_approval_waiting_seconds", {**labels, "step": run.approval.step_id},
                    round(waited, 1))


def add_alerts(out: Exposition, alerts: Iterable[AlertState], clusters: Iterable[str], *, now: datetime) -> None:
    """The stored alerts of ``clusters`` by condition and phase, and per cluster how many fire without
    a message: a post that failed is retried at each evaluation, and this says that it keeps failing."""
    alerts = list(alerts)
    out.declare("kafka_chatops_alerts")
    for (cluster, condition, phase), count in sorted(
            Counter((a.key.cluster, a.key.condition.value, a.phase.value) for a in alerts).items()):
        out.add("kafka_chatops_alerts", {"cluster": cluster, "condition": condition, "phase": phase}, count)
    out.declare("kafka_chatops_alerts_unposted")
    for cluster in sorted(clusters):
        unposted = sum(1 for a in alerts if a.key.cluster == cluster and a.phase is Phase.FIRING
                       and a.message is None and not a.snoozed(now))
        out.add("kafka_chatops_alerts_unposted", {"cluster": cluster}, unposted)


def checked_lag_document(document: dict[str, Any]) -> dict[str, Any]:
    """A stored report as plain JSON, checked before ``lag_exposition`` streams it (a document that
    does not hold together is refused here, not halfway through a response): a compact one by
    reading its pairs once (nothing kept), one in the models' form (an older replica's) by the models."""
    if document.get("format") == COMPACT_FORMAT:
        ends = document.get("log_offsets") or {}
        for group in document.get("groups") or ():
            for _ in compact_partitions(group, ends):
                pass
        return document
    return LagReport.model_validate(document).model_dump(mode="json") if "format" not in document else \
        _refused(document)


def _refused(document: dict[str, Any]) -> dict[str, Any]:
    raise ValueError(f"lag report format {document.get('format')!r} is not one this bot reads")


def lag_exposition(documents: Sequence[dict[str, Any]], chunk_chars: int = 1 << 16) -> Iterator[str]:
    """The lag families of ``add_lag_report`` for stored reports as plain JSON (either form,
    through ``checked_lag_document``), as text in pieces of about ``chunk_chars``: the same lines,
    without a model or a kept line per pair (at 100,000 pairs the models and the lines of one
    scrape took about 300 MB)."""
    if not documents:
        return
    pending: list[str] = []
    size = 0
    for line in _lag_lines(documents):
        pending.append(line)
        size += len(line)
        if size >= chunk_chars:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)


def _pairs(group: dict[str, Any], ends: dict[Any, dict[Any, Any]]) -> Iterable[dict[str, Any]]:
    return compact_partitions(group, ends) if "topics" in group else group.get("partitions") or ()


def _sample(name: str, labels: Mapping[str, object], value: float | int | None) -> str:
    rendered = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
    return f"{name}{{{rendered}}} {_number(value)}\n"


def _lag_lines(documents: Sequence[dict[str, Any]]) -> Iterator[str]:
    """Family by family (a family's samples must be together), cluster by cluster, in
    ``add_lag_report``'s order."""
    def header(name: str) -> str:
        return f"# HELP {name} {_HELP.get(name, name)}\n# TYPE {name} gauge\n"

    def groups(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return (g for g in document.get("groups") or () if g.get("error") is None)

    per_pair = {"kafka_consumergroup_group_offset": "committed", "kafka_consumergroup_group_lag": "lag",
                "kafka_consumergroup_group_lag_seconds": "seconds"}
    for name, field in per_pair.items():
        yield header(name)
        for document in documents:
            cluster, ends = document["cluster"], document.get("log_offsets") or {}
            for group in groups(document):
                for p in _pairs(group, ends):
                    value = p[field]
                    yield _sample(name, {
                        "cluster_name": cluster, "group": group["group"], "topic": p["topic"],
                        "partition": p["partition"], "member_host": p.get("host") or UNKNOWN,
                        "consumer_id": p.get("member_id") or UNKNOWN, "client_id": p.get("client_id") or UNKNOWN,
                    }, float(value) if field == "seconds" and value is not None else value)
    for name in ("kafka_consumergroup_group_max_lag", "kafka_consumergroup_group_max_lag_seconds",
                 "kafka_consumergroup_group_sum_lag", "kafka_consumergroup_group_topic_sum_lag"):
        yield header(name)
        for document in documents:
            cluster, ends = document["cluster"], document.get("log_offsets") or {}
            for group in groups(document):
                labels = {"cluster_name": cluster, "group": group["group"]}
                pairs = _pairs(group, ends)
                if name == "kafka_consumergroup_group_max_lag":
                    yield _sample(name, labels, max((p["lag"] for p in pairs), default=0))
                elif name == "kafka_consumergroup_group_max_lag_seconds":
                    known = [float(p["seconds"]) for p in pairs if p["seconds"] is not None]
                    yield _sample(name, labels, max(known) if known else None)
                elif name == "kafka_consumergroup_group_sum_lag":
                    yield _sample(name, labels, sum(p["lag"] for p in pairs))
                else:
                    sums: dict[str, int] = {}
                    for p in pairs:
                        sums[p["topic"]] = sums.get(p["topic"], 0) + p["lag"]
                    for topic, total in sorted(sums.items()):
                        yield _sample(name, {**labels, "topic": topic}, total)
    for name, at in (("kafka_partition_latest_offset", 1), ("kafka_partition_earliest_offset", 0)):
        yield header(name)
        for document in documents:
            for topic, partitions in sorted((document.get("log_offsets") or {}).items()):
                for partition, offsets in sorted(partitions.items(), key=lambda item: int(item[0])):
                    yield _sample(name, {"cluster_name": document["cluster"], "topic": topic,
                                         "partition": int(partition)}, offsets[at])
    name = "kafka_consumergroup_poll_time_ms"
    yield header(name)
    for document in documents:
        yield _sample(name, {"cluster_name": document["cluster"]}, round(document["poll_seconds"] * 1000, 1))
