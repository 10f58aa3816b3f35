"""The run card as Block Kit: header, steps, what the approver must know, and the buttons.

Every text is clipped to Block Kit's limits (header 150, section 3000, button text 75, button
value 2000, 50 blocks) and the whole card is kept well under the ~13k characters at which Slack
answers ``msg_blocks_too_long`` whatever the per-block limits say: a run with many steps shows
its step lines without their details, then clipped, rather than failing to render.

Buttons carry only what the engine checks (run id, step id, nonce, plan hash): who may click is
decided from the run in Redis at click time, never from anything in the message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.runs.run_text import STEP_ICONS, approval_summary, run_title
from runbooks.catalogue.undo import SUPERSEDED, Footprint, undo_offered
from runbooks.engine.aborting import stopping_line
from runbooks.engine.models import Run, RunState, Step, StepState

APPROVE_ACTION = "kco_approve"
ABORT_ACTION = "kco_abort"
RETRY_ACTION = "kco_retry"
UNDO_ACTION = "kco_undo"

MAX_BLOCKS = 50
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
CONTEXT_LIMIT = 2000  # a context element's text shares the section limit; stay lower, it is a footnote
BUTTON_VALUE_LIMIT = 2000
STEP_TEXT_BUDGET = 7000  # all step lines together; leaves room for the rest under the ~13k aggregate cap
FALLBACK_LIMIT = 3000  # the notification text

Block = dict[str, Any]
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SLACK_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")


@dataclass(frozen=True)
class ButtonValue:
    """What a button echoes back: the step it was shown for, never who may press it."""

    run_id: str
    step_id: str = ""
    nonce: str = ""
    plan_hash: str = ""

    def encode(self) -> str:
        return json.dumps({"run": self.run_id, "step": self.step_id, "nonce": self.nonce, "plan": self.plan_hash},
                          separators=(",", ":"))

    @classmethod
    def decode(cls, raw: object) -> ButtonValue | None:
        """The value, or None for anything this bot did not write (a forged or truncated value)."""
        if not isinstance(raw, str) or len(raw) > BUTTON_VALUE_LIMIT:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("run"), str) or not data["run"]:
            return None
        fields = [data.get(k, "") for k in ("step", "nonce", "plan")]
        if not all(isinstance(f, str) for f in fields):
            return None
        return cls(data["run"], *fields)


def escape(text: str) -> str:
    """Slack mrkdwn control characters: details can come from Kafka or Kubernetes error messages."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def who(actor_id: str) -> str:
    """A Slack user or user group as a mention, anything else (a console user) as plain text."""
    if _SLACK_USER.match(actor_id):
        return f"<@{actor_id}>"
    if _SLACK_GROUP.match(actor_id):
        return f"<!subteam^{actor_id}>"
    return escape(actor_id)


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, CONTEXT_LIMIT)}]}


def _button(text: str, action_id: str, value: ButtonValue, style: str | None = None) -> Block:
    button: Block = {"type": "button", "text": {"type": "plain_text", "text": clip(text, 75), "emoji": True},
                     "action_id": action_id, "value": value.encode()}
    if style:
        button["style"] = style
    return button


def _abort_button(run: Run) -> Block:
    button = _button("Abort", ABORT_ACTION, ButtonValue(run.id), style="danger")
    button["confirm"] = {
        "title": {"type": "plain_text", "text": "Abort this run?"},
        "text": {"type": "mrkdwn", "text": clip(
            f"Stop *{escape(run_title(run))}* ({run.id}) at the next safe point. A step in flight is not cut "
            "off, and done steps are not undone.", 300)},
        "confirm": {"type": "plain_text", "text": "Abort the run"},
        "deny": {"type": "plain_text", "text": "Keep it"},
        "style": "danger",
    }
    return button


def _step_line(index: int, step: Step, *, current: bool, with_detail: bool) -> str:
    title = escape(step.spec.title)
    line = f"{STEP_ICONS[step.state]} {index + 1} " + (f"*{title}*" if current else title)
    if step.state is StepState.DONE and step.started_at and step.finished_at:
        seconds = int((step.finished_at - step.started_at).total_seconds())
        line += f" ({seconds // 60} min {seconds % 60} s)" if seconds >= 60 else f" ({seconds} s)"
    if with_detail and step.detail and step.state is not StepState.PENDING:
        line += f": {escape(step.detail)}"
    return line


def step_lines(run: Run) -> list[str]:
    """One line per step; details dropped, then lines clipped, when they would not fit the card."""
    live = not run.state.terminal

    def lines(with_detail: bool) -> list[str]:
        # The current step keeps its detail whatever the budget: it is what people are watching.
        return [_step_line(i, s, current=live and i == run.current,
                           with_detail=with_detail or (live and i == run.current))
                for i, s in enumerate(run.steps)]

    full = lines(with_detail=True)
    if sum(len(line) + 1 for line in full) <= STEP_TEXT_BUDGET:
        return full
    short = lines(with_detail=False)
    per_line = max(40, STEP_TEXT_BUDGET // max(1, len(short)) - 1)
    return [clip(line, per_line) for line in short]


def _chunks(lines: list[str], limit: int) -> list[str]:
    """Group lines into texts of at most ``limit`` characters (one section each)."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = clip(line, limit)
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def status_line(run: Run) -> str:
    step_no = min(run.current + 1, len(run.steps))
    return (f"requested by {who(run.requested_by)} · run `{run.id}` · step {step_no} of {len(run.steps)} · "
            f"*{run.state.value.replace('_', ' ')}*")


def _approval_blocks(run: Run) -> list[Block]:
    step, request = run.current_step, run.approval
    assert step is not None and request is not None
    lines = [f"*Waiting for approval:* step `{escape(step.id)}`, {escape(step.spec.title)}."]
    if step.spec.summary:
        lines.append(escape(approval_summary(step)))
    if step.findings:
        lines.append("*Gate findings:* " + escape("; ".join(step.findings)))
    elif step.detail:
        lines.append(f"*Gate:* {escape(step.detail)}")
    approvers = [who(a) for a in (*run.policy.approvers, *run.policy.approver_groups)]
    rule = " · four-eyes: the requester cannot approve" if run.policy.four_eyes else ""
    footer = (f"approvals {len(request.approvals)}/{request.required} · approvers: "
              f"{', '.join(approvers) or 'nobody configured'}{rule} · expires {request.expires_at:%H:%M:%S} UTC")
    buttons = [
        _button("Approve", APPROVE_ACTION, ButtonValue(run.id, step.id, request.nonce, request.plan_hash),
                style="primary"),
        _abort_button(run),
    ]
    return [_section("\n".join(lines)), _context(footer),
            {"type": "actions", "block_id": f"approval:{run.id}:{request.nonce}"[:255], "elements": buttons}]


def _undo_button(run: Run, step: Step, change: Footprint) -> Block:
    button = _button("Undo", UNDO_ACTION, ButtonValue(run.id, step.id))
    button["confirm"] = {
        "title": {"type": "plain_text", "text": "Undo this change?"},
        "text": {"type": "mrkdwn", "text": clip(
            f"Start a new run that puts back {escape(change.diff())} and follows the operator's roll back. It ends "
            f"run {run.id} and takes over its cluster lock; an approver approves it before anything is changed.",
            300)},
        "confirm": {"type": "plain_text", "text": "Ask for the undo"},
        "deny": {"type": "plain_text", "text": "Not now"},
    }
    return button


def _paused_blocks(run: Run) -> list[Block]:
    step = run.current_step
    reason = escape(run.pause_reason or "paused")
    buttons = [_abort_button(run)]
    if step is not None:
        buttons.insert(0, _button("Retry", RETRY_ACTION, ButtonValue(run.id, step.id), style="primary"))
    change = undo_offered(run)
    hint = f"Fix the cause (`/kafka status {run.cluster}`), then retry the step."
    if step is not None and change is not None:
        buttons.insert(1, _undo_button(run, step, change))
        hint += f" Or undo the change ({escape(change.diff())}): a new run, approved like any other."
    return [_section(f"*Paused:* {reason}\n{hint}"),
            {"type": "actions", "block_id": f"paused:{run.id}:{step.id if step else ''}"[:255], "elements": buttons}]


def _finished_blocks(run: Run) -> list[Block]:
    lines = [f"*Finished: {run.state.value}.* {escape(run.outcome or '')}".rstrip()]
    offered = [s for s in run.steps if s.state is StepState.DONE and s.spec.compensation]
    if run.state is not RunState.SUCCEEDED and offered and SUPERSEDED not in (run.outcome or ""):
        lines.append("Undo available (not run automatically): " + escape(
            "; ".join(f"{s.spec.title}: {s.spec.compensation}" for s in offered)))
    return [_section("\n".join(lines))]


def fallback_text(run: Run) -> str:
    """The message's ``text``: what notifications and screen readers show."""
    step = run.current_step
    where = ""
    if step is not None and not run.state.terminal:
        where = f", step {run.current + 1} of {len(run.steps)}: {step.spec.title}"
    return clip(f"{run_title(run)} ({run.id}): {run.state.value.replace('_', ' ')}{where}", FALLBACK_LIMIT)


def run_card_blocks(run: Run, now: datetime | None = None) -> list[Block]:
    """The card for ``run``; buttons only while a human can act (never on a finished run)."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(run_title(run), HEADER_LIMIT), "emoji": True}},
        _context(status_line(run)),
    ]
    tail: list[Block] = []
    if run.state.terminal:
        tail = _finished_blocks(run)
    elif run.state is RunState.AWAITING_APPROVAL and run.approval is not None and run.current_step is not None:
        tail = _approval_blocks(run)
    elif run.state is RunState.PAUSED:
        tail = _paused_blocks(run)
    elif run.abort_requested_by:
        tail = [_section(stopping_line(run, who(run.abort_requested_by)))]
    room = MAX_BLOCKS - len(blocks) - len(tail)
    sections = [_section(chunk) for chunk in _chunks(step_lines(run), SECTION_LIMIT)]
    if len(sections) > room:  # unreachable with the text budget above, but never exceed the block cap
        sections = [*sections[: room - 1], _section("…")]
    return [*blocks, *sections, *tail]


def thread_line(action: str, actor: str, step_id: str | None, detail: str, at: datetime) -> str | None:
    """One audit entry as a line in the card's thread, or None for bookkeeping nobody needs to read."""
    if action in _QUIET_ACTIONS or action.endswith("_refused"):
        return None  # refusals are answered privately and kept in the audit stream
    label = _ACTION_LABELS.get(action, action.replace("_", " "))
    # The engine's own moves are "worker" or "clock", suffixed "@<replica>" by the worker that made them.
    by = "" if actor.split("@", 1)[0] in ("worker", "clock") else f" by {who(actor)}"
    step = f" `{escape(step_id)}`" if step_id else ""
    text = f": {escape(detail)}" if detail else ""
    return clip(f"`{at:%H:%M:%S}`{step} {label}{by}{text}", 500)


_QUIET_ACTIONS = frozenset({"observed", "gate_advisory"})
_ACTION_LABELS = {
    "requested": "requested",
    "start_awaiting": "started, waiting for approval",
    "start_running": "started",
    "approve": "✅ approved",
    "approve_partial": "approval recorded",
    "gate_ok": "health gate passed",
    "gate_failed": "⚠️ health gate failed",
    "applied": "action applied",
    "progress": "⏳",
    "action_failed": "⚠️ action failed",
    "action_failed_permanent": "❌ failed",
    "condition_failed": "⚠️ check failed",
    "timeout": "⚠️ timed out",
    "approval_expired": "⚠️ approval expired",
    "next_awaiting": "step done; next step waits for approval",
    "next_running": "step done; next step started",
    "complete": "🏁 run complete",
    "abort": "🛑 aborted",
    "abort_deferred": "abort requested",
    "abort_at_safe_point": "🛑 aborted at a safe point",
    "retry_awaiting": "retry, waiting for approval",
    "retry_running": "retry",
    "retry_waiting": "retry, waiting again",
}
