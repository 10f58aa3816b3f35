"""Transport-neutral views of alerts: the message (a headline, lines, buttons) the console prints
and Slack wraps in blocks, and the text of ``/kafka alerts`` and ``/kafka lag``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from handlers.alerting.lag_models import GroupLag, LagReport, format_seconds
from runbooks.alerting.lifecycle import AlertState, Condition, Phase

SNOOZE_CHOICES = (("30 min", "30m"), ("2 h", "2h"), ("1 day", "1d"))
PHASE_ICONS = {Phase.PENDING: "⏳", Phase.FIRING: "🔴", Phase.RESOLVED: "✅"}
SNOOZED_ICON = "🔕"
LAG_ROWS = 20  # partitions listed by /kafka lag <cluster> <group>; the rest are counted


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class AlertButton(_Frozen):
    label: str
    action: Literal["snooze", "command"]
    value: str  # a duration (30m) for snooze; a command line for command
    style: Literal["primary", "danger"] | None = None


class AlertView(_Frozen):
    alert_id: str
    cluster: str
    condition: Condition
    subject: str
    phase: Phase
    value: float = 0.0  # the number the rule compared (partitions, seconds, records, restarts)
    headline: str
    lines: tuple[str, ...] = ()
    buttons: tuple[AlertButton, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join((self.headline, *self.lines))


def clock_time(at: datetime) -> str:
    return at.strftime("%H:%M UTC")


def span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


def _value(state: AlertState, value: float) -> str:
    if state.key.condition in (Condition.CONSUMER_LAG, Condition.MIRROR_LAG, Condition.MIRROR_CANARY):
        unit = state.facts.get("unit", "s")
        return format_seconds(value) if unit == "s" else f"{int(value):,} records"
    return f"{value:g}"


def headline(state: AlertState) -> str:
    subject, value = state.key.subject, state.value
    texts = {
        Condition.BROKER_DOWN: f"broker {subject.removeprefix('broker-')} is down",
        Condition.UNDER_REPLICATED: f"under-replicated: broker {subject.removeprefix('broker-')} is out of the ISR "
                                    f"of {int(value)} partitions",
        Condition.UNDER_MIN_ISR: f"{int(value)} partitions under min.insync.replicas",
        Condition.OFFLINE_PARTITIONS: f"{int(value)} offline partitions",
        Condition.QUORUM: "the KRaft controller quorum is unhealthy",
        Condition.KAFKA_UNREACHABLE: "Kafka is unreachable from the bot",
        Condition.CONSUMER_LAG: f"consumer group {subject.removeprefix('group:')} is lagging "
                                f"({_value(state, value)} behind)",
        Condition.KAFKA_NOT_READY: f"the Kafka resource {subject.removeprefix('kafka/')} is not Ready",
        Condition.KAFKA_WARNING: f"Strimzi warning {subject}",
        Condition.POD_CRASHING: f"pod {subject} is crashing",
        Condition.STRIMZI_RESTART: f"Strimzi is restarting pod {subject}",
        Condition.UNOWNED_THROTTLES: _throttles_headline(state),
        Condition.MIRROR_FAILED: _mirror_failed_headline(state),
        Condition.MIRROR_LAG: f"MirrorMaker 2 {subject.removeprefix('mirror/')} is lagging ({_value(state, value)} "
                              "behind)",
        Condition.MIRROR_CANARY: f"MirrorMaker 2 {subject.removeprefix('mirror/')}: no canary record arrived for "
                                 f"{_value(state, value)}",
    }
    return texts[state.key.condition]


def _mirror_failed_headline(state: AlertState) -> str:
    mirror, connector, task = state.facts.get("mirror"), state.facts.get("connector"), state.facts.get("task")
    what = f"task {task} of {connector}" if task is not None else f"connector {connector}"
    return f"MirrorMaker 2 {mirror}: {what} FAILED"


def alert_view(state: AlertState, now: datetime, *, mention: Callable[[str], str] = str) -> AlertView:
    """The message for ``state``. ``mention`` turns a user id into what the channel shows (Slack: <@U1>)."""
    snoozed = state.snoozed(now)
    icon = SNOOZED_ICON if snoozed and state.phase is not Phase.RESOLVED else PHASE_ICONS[state.phase]
    title = f"{icon} {state.key.cluster}: {headline(state)}"
    if state.phase is Phase.RESOLVED:
        title += " — resolved"
    lines = [state.detail] if state.detail else []
    started = state.fired_at or state.since
    if state.phase is Phase.RESOLVED and state.resolved_at is not None:
        lasted = span((state.resolved_at - started).total_seconds())
        lines.append(f"Resolved at {clock_time(state.resolved_at)} after {lasted}; worst {_value(state, state.peak)}.")
    else:
        lines.append(f"Since {clock_time(started)} ({span((now - started).total_seconds())}) · now "
                     f"{_value(state, state.value)} · {state.trend} · worst {_value(state, state.peak)}")
    if state.flaps:
        lines.append(f"Flapping: fired again {state.flaps} time{'s' if state.flaps > 1 else ''} within the "
                     "cooldown; this message is reused.")
    if snoozed and state.snoozed_until is not None and state.snoozed_by is not None:
        lines.append(f"{SNOOZED_ICON} Snoozed by {mention(state.snoozed_by)} until {clock_time(state.snoozed_until)}.")
    lines += _lag_lines(state)
    lines += _throttle_lines(state)
    if state.key.condition is Condition.MIRROR_FAILED and state.phase is not Phase.RESOLVED:
        lines.append(f"The restart sets the annotation {state.facts.get('annotation')} (Strimzi restarts it through "
                     "Connect's REST API); an approver confirms it first.")
    lines.append(f"Alert {state.id} · /kafka snooze {state.id} 2h")
    buttons: list[AlertButton] = []
    if state.phase is not Phase.RESOLVED:
        buttons += [AlertButton(label=f"Snooze {label}", action="snooze", value=value)
                    for label, value in SNOOZE_CHOICES]
    command, label = state.facts.get("next_command"), state.facts.get("next_label")
    if isinstance(command, str) and isinstance(label, str) and state.phase is not Phase.RESOLVED:
        buttons.append(AlertButton(label=label, action="command", value=command, style="primary"))
    return AlertView(alert_id=state.id, cluster=state.key.cluster, condition=state.key.condition,
                     subject=state.key.subject, phase=state.phase, value=state.value, headline=title,
                     lines=tuple(lines),
                     buttons=tuple(buttons))


def _lag_lines(state: AlertState) -> list[str]:
    if state.key.condition is not Condition.CONSUMER_LAG or state.phase is Phase.RESOLVED:
        return []
    lines: list[str] = []
    partitions = state.facts.get("partitions") or []
    if partitions:
        shown = ", ".join(
            f"{p['partition']} {p['lag']:,}"
            + (f"/{format_seconds(p['seconds'])}" if p.get("seconds") is not None else "")
            for p in partitions[:5] if isinstance(p, dict))
        lines.append(f"Worst partitions (records/age): {shown}")
    members = state.facts.get("members") or []
    if members:
        lines.append("Members: " + ", ".join(
            f"{m.get('client_id') or '?'}@{m.get('host') or '?'} ({m.get('partitions', 0)} partitions)"
            for m in members[:5] if isinstance(m, dict)))
    else:
        lines.append(f"Members: none (group {state.facts.get('state') or 'state unknown'}): nothing is consuming.")
    return lines


def _throttles_headline(state: AlertState) -> str:
    brokers, topics = state.facts.get("brokers", 0), state.facts.get("topics", 0)
    on = [f"{brokers} broker{'s' if brokers != 1 else ''}"] if brokers else []
    on += [f"{topics} topic{'s' if topics != 1 else ''}"] if topics else []
    where = " and ".join(on) or "the cluster-wide default"
    return f"replication throttles left on {where} with no run owning them"


def _throttle_lines(state: AlertState) -> list[str]:
    """What is throttled and the commands that clear it, while it fires: the bot clears nothing
    itself (another tool may still need its throttle)."""
    if state.key.condition is not Condition.UNOWNED_THROTTLES or state.phase is Phase.RESOLVED:
        return []
    summary = [line for line in state.facts.get("summary") or [] if isinstance(line, str)]
    commands = [line for line in state.facts.get("commands") or [] if isinstance(line, str)]
    if not commands:
        return summary
    return [*summary, "To clear them (the bot does not: check nobody still needs them):", *commands]


def alerts_text(cluster: str, states: Sequence[AlertState], now: datetime) -> str:
    """``/kafka alerts <cluster>``: what fires, what waits out its window, what resolved recently."""
    if not states:
        return f"No alerts on {cluster}."
    order = {Phase.FIRING: 0, Phase.PENDING: 1, Phase.RESOLVED: 2}
    lines = [f"Alerts on {cluster}:"]
    for state in sorted(states, key=lambda s: (order[s.phase], s.since)):
        started = state.fired_at or state.since
        if state.phase is Phase.RESOLVED and state.resolved_at is not None:
            when = f"resolved {span((now - state.resolved_at).total_seconds())} ago"
        elif state.phase is Phase.PENDING:
            when = f"pending for {span((now - state.since).total_seconds())}"
        else:
            when = f"firing for {span((now - started).total_seconds())}"
        snoozed = (f" · snoozed by {state.snoozed_by} until {clock_time(state.snoozed_until)}"
                   if state.snoozed(now) and state.snoozed_until is not None else "")
        lines.append(f"  {state.id} {PHASE_ICONS[state.phase]} {headline(state)} · {when}{snoozed}")
    lines.append("/kafka snooze <alert> <duration> mutes one, e.g. /kafka snooze a-1b2c3d4e 2h")
    return "\n".join(lines)


def lag_overview(report: LagReport, now: datetime) -> str:
    """``/kafka lag <cluster>``: every group, the most behind first."""
    age = span((now - report.taken_at).total_seconds())
    if not report.groups:
        return f"No consumer groups on {report.cluster} (polled {age} ago)."
    lines = [f"Consumer lag on {report.cluster} (polled {age} ago, in {report.poll_seconds:.2f} s):",
             "  group · state · members · max lag (records) · max lag (time) · total"]
    ranked = sorted(report.groups, key=lambda g: (g.error is None, -(g.max_lag_seconds or 0), -g.max_lag, g.group))
    for group in ranked:
        if group.error is not None:
            lines.append(f"  {group.group} · not read: {group.error}")
            continue
        lines.append(f"  {group.group} · {group.state or '?'} · {len(group.members)} · {group.max_lag:,} · "
                     f"{format_seconds(group.max_lag_seconds)} · {group.sum_lag:,}")
    return "\n".join(lines)


def lag_detail(report: LagReport, group: GroupLag, now: datetime) -> str:
    """``/kafka lag <cluster> <group>``: the group's partitions and members."""
    age = span((now - report.taken_at).total_seconds())
    if group.error is not None:
        return f"{group.group} on {report.cluster}: could not be read in the last poll ({age} ago): {group.error}"
    lines = [f"{group.summary()} · polled {age} ago"]
    if group.members:
        lines.append("Members:")
        lines += [f"  {m.client_id or '?'} @ {m.host or '?'} · {len(m.partitions)} partitions · {m.member_id}"
                  for m in group.members]
    else:
        lines.append("Members: none: nothing is consuming (lag keeps growing while producers write).")
    lines.append("Partitions (committed / end · lag · time behind · member):")
    for p in group.worst(LAG_ROWS):
        how = {"record": " (record time)", "table": "", "caught_up": "", "unknown": ""}[p.seconds_from.value]
        lines.append(f"  {p.name}: {p.committed:,} / {p.end:,} · {p.lag:,} · {format_seconds(p.seconds)}{how} · "
                     f"{p.client_id or '-'}")
    if len(group.partitions) > LAG_ROWS:
        lines.append(f"  ... and {len(group.partitions) - LAG_ROWS} more partitions")
    return "\n".join(lines)
