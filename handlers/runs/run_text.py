"""Transport-neutral views of runs, plans and clusters: text the console prints and Slack
wraps in blocks, and JSON-able event records for ``console --json``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.replies import cap_echoes
from runbooks.catalogue.undo import SUPERSEDED, undo_offered
from runbooks.engine.aborting import stopping_line
from runbooks.engine.events import Notify
from runbooks.engine.models import Run, RunState, Step, StepSpec, StepState

# A word of a card or plan longer than this is cut (a config value typed by someone): bootstrap lists
# and resource names stay whole, a 100 KB value does not make a 100 KB card.
CARD_WORD_LIMIT = 200

STEP_ICONS = {
    StepState.PENDING: "⬜",
    StepState.AWAITING_APPROVAL: "⏸️",
    StepState.RUNNING: "⏳",
    StepState.WAITING: "⏳",
    StepState.PAUSED: "⚠️",
    StepState.DONE: "✅",
    StepState.SKIPPED: "⏭️",
    StepState.FAILED: "❌",
    StepState.ABORTED: "🛑",
}

RUN_TITLES = {
    "restart": "Rolling restart of {cluster}",
    "upgrade": "Upgrade {cluster} to Kafka {version}",
    "config": "Config change on {cluster}: {change}",
    "undo": "Undo run {of} on {cluster}: {change}",
}


def run_title(run: Run) -> str:
    title = RUN_TITLES.get(run.runbook, run.runbook + " on {cluster}").format(cluster=run.cluster, **run.params)
    return cap_echoes(title, CARD_WORD_LIMIT)


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = int((end - start).total_seconds())
    return f" ({seconds // 60} min {seconds % 60} s)" if seconds >= 60 else f" ({seconds} s)"


def step_line(index: int, step: Step) -> str:
    line = f"{STEP_ICONS[step.state]} {index + 1} {step.spec.title}"
    if step.state is StepState.DONE:
        line += _duration(step.started_at, step.finished_at)
    if step.detail and step.state not in (StepState.PENDING,):
        line += f": {cap_echoes(step.detail, CARD_WORD_LIMIT)}"
    return line


AT_RISK = "At risk: "


def approval_summary(step: Step) -> str:
    """The plan's summary of a waiting step. Its last sentence, "At risk: ...", is what the planner
    saw; once the step's gate has been asked again (``detail``, re-checked while the approval waits)
    that is dropped where the new answer says what is at risk now, else marked as the plan's."""
    summary = step.spec.summary
    head, found, planned = summary.rpartition(AT_RISK)
    if not found or not step.detail:
        return summary
    if AT_RISK in step.detail:
        return head.rstrip()
    return f"{head}At risk when planned: {planned}"


def run_card(run: Run, now: datetime | None = None) -> str:
    """The run card as text: the same content Slack shows in blocks."""
    step_no = min(run.current + 1, len(run.steps))
    header = (
        f"{run_title(run)}    requested by {run.requested_by} · run {run.id} · "
        f"step {step_no} of {len(run.steps)} · {run.state.value}"
    )
    lines = [header]
    lines += [step_line(i, s) for i, s in enumerate(run.steps)]
    step = run.current_step
    if run.state is RunState.AWAITING_APPROVAL and run.approval is not None and step is not None:
        lines.append(f"Waiting for approval: step {step.id}, {step.spec.title}.")
        if step.spec.summary:
            lines.append(f"  {cap_echoes(approval_summary(step), CARD_WORD_LIMIT)}")
        if step.findings:
            lines.append("  Gate findings: " + "; ".join(step.findings))
        got = len(run.approval.approvals)
        need = run.approval.required
        who = ", ".join(run.policy.approvers + run.policy.approver_groups) or "nobody configured"
        expires = f" · expires {run.approval.expires_at:%H:%M:%S} UTC"
        lines.append(f"  approvals {got}/{need} · approvers: {who}{expires}")
        lines.append(f"  approve {run.id} {step.id}    |    abort {run.id}")
    elif run.state is RunState.PAUSED:
        lines.append(f"Paused: {run.pause_reason}")
        lines.append(f"  resume {run.id} (retry the step)    |    abort {run.id}")
        change = undo_offered(run)
        if change is not None:
            lines.append(f"  undo {run.cluster} {run.id} (a new run, approved like any other, that puts back "
                         f"{change.diff()})")
    elif run.abort_requested_by and not run.state.terminal:
        lines.append(stopping_line(run, run.abort_requested_by))
    if run.state.terminal:
        lines.append(f"Finished: {run.state.value}. {run.outcome or ''}".rstrip())
        offered = [s for s in run.steps if s.state is StepState.DONE and s.spec.compensation]
        if run.state is not RunState.SUCCEEDED and offered and SUPERSEDED not in (run.outcome or ""):
            lines.append("Undo available (not run automatically): " + "; ".join(
                f"{s.spec.title}: {s.spec.compensation}" for s in offered))
    return "\n".join(lines)


def plan_text(cluster: str, title: str, steps: list[StepSpec]) -> str:
    lines = [f"Plan (dry run, nothing changed): {title} on {cluster}"]
    for i, spec in enumerate(steps):
        approval = "approval" if spec.needs_approval else "automatic"
        lines.append(f"  {i + 1}. {spec.title} [{approval}]")
        if spec.summary:
            lines.append(f"     {cap_echoes(spec.summary, CARD_WORD_LIMIT)}")
    return "\n".join(lines)


def run_row(run: Run) -> str:
    step = run.current_step
    where = f" at {step.spec.title}" if step and not run.state.terminal else ""
    return f"{run.id}  {run.cluster:<16} {run.runbook:<10} {run.state.value:<18} by {run.requested_by}{where}"


def event_record(run: Run, note: Notify) -> dict[str, Any]:
    """One line of ``console --json``: what happened, to which run and step, and the run's state."""
    record: dict[str, Any] = {
        "event": note.event, "run_id": run.id, "cluster": run.cluster, "runbook": run.runbook,
        "state": run.state.value, "text": note.text,
    }
    if note.step_id is not None:
        record["step_id"] = note.step_id
    if note.event == "step_awaiting_approval" and run.approval is not None:
        record["nonce"] = run.approval.nonce
    if note.event == "run_finished":
        record["final_state"] = run.state.value
    return record
