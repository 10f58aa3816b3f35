"""The run card's blocks: the right buttons for the run's state, and always within Block Kit's limits
(checked with slack_sdk's own block validators, which encode Slack's documented limits)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import Block

from bot.slack.blocks import (
    ABORT_ACTION,
    APPROVE_ACTION,
    MAX_BLOCKS,
    RETRY_ACTION,
    UNDO_ACTION,
    ButtonValue,
    fallback_text,
    run_card_blocks,
    thread_line,
)
from runbooks.catalogue.restart import RestartBrokerArgs
from runbooks.catalogue.step_args import FollowRollArgs, PatchKafkaArgs, edit
from runbooks.engine.models import (
    ApprovalPolicy,
    ApprovalRequest,
    Run,
    RunState,
    Step,
    StepSpec,
    StepState,
    plan_hash,
)
from tests.slack.payloads import card_text, find_button

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_run(steps: int = 3, *, state: RunState = RunState.AWAITING_APPROVAL, detail: str = "",
             title: str = "Restart broker {i}", summary: str = "At risk: none.", **changes: Any) -> Run:
    specs = [StepSpec(id=f"restart-{i}", title=title.format(i=i), args=RestartBrokerArgs(broker=i, pod=f"p-{i}"),
                      summary=summary)
             for i in range(steps)]
    run_steps = [Step(spec=s, state=StepState.DONE if i == 0 else StepState.PENDING, detail=detail,
                      started_at=T0, finished_at=T0 + timedelta(seconds=75) if i == 0 else None)
                 for i, s in enumerate(specs)]
    if steps > 1:
        run_steps[1] = run_steps[1].model_copy(update={"state": StepState.AWAITING_APPROVAL})
    values: dict[str, Any] = {
        "id": "r-0123abcd", "runbook": "restart", "cluster": "prod-east", "requested_by": "U0REQ",
        "channel": "C0KAFKA", "created_at": T0, "updated_at": T0, "state": state, "steps": tuple(run_steps),
        "current": 1, "plan_hash": plan_hash(specs),
        "policy": ApprovalPolicy(approvers=("U0APP",), approver_groups=("S0OPS",)),
        "approval": ApprovalRequest(step_id="restart-1", nonce="nonce-1", plan_hash=plan_hash(specs),
                                    requested_at=T0, expires_at=T0 + timedelta(minutes=30)),
    }
    values.update(changes)
    return Run(**values)


def validated(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parse each block with slack_sdk's models, which raise on any Block Kit limit broken."""
    assert len(blocks) <= MAX_BLOCKS
    for raw in blocks:
        parsed = Block.parse(raw)
        assert parsed is not None
        parsed.validate_json()
    assert len(json.dumps(blocks, ensure_ascii=False)) < 13000, "Slack's msg_blocks_too_long aggregate cap"
    return blocks


def test_a_step_awaiting_approval_shows_approve_and_a_confirmed_abort() -> None:
    """Approve (primary) carries only run, step, nonce and plan hash; Abort (danger) asks for confirmation."""
    blocks = validated(run_card_blocks(make_run()))
    approve, abort = find_button(blocks, APPROVE_ACTION), find_button(blocks, ABORT_ACTION)
    assert approve is not None and abort is not None
    assert approve["style"] == "primary" and abort["style"] == "danger" and abort["confirm"]["style"] == "danger"
    assert json.loads(approve["value"]) == {"run": "r-0123abcd", "step": "restart-1", "nonce": "nonce-1",
                                            "plan": make_run().plan_hash}
    text = card_text(blocks)
    assert "At risk: none." in text and "<@U0APP>" in text and "<!subteam^S0OPS>" in text
    assert "requested by <@U0REQ>" in text and "(1 min 15 s)" in text


def test_a_paused_run_offers_retry_and_a_finished_run_no_buttons() -> None:
    """Paused: Retry + Abort. Succeeded, failed or aborted: no actions block at all."""
    paused = validated(run_card_blocks(make_run(state=RunState.PAUSED, approval=None, pause_reason="gate failed")))
    assert find_button(paused, RETRY_ACTION) is not None and find_button(paused, APPROVE_ACTION) is None
    for state in (RunState.SUCCEEDED, RunState.FAILED, RunState.ABORTED):
        blocks = validated(run_card_blocks(make_run(state=state, approval=None, outcome="done")))
        assert not [b for b in blocks if b["type"] == "actions"], state


def test_a_paused_config_change_offers_undo_with_a_confirm_and_a_restart_does_not() -> None:
    """A config run paused after its patch was applied: an Undo button (run and step only, no style),
    behind a confirm dialog saying what it puts back and that it needs an approval; the text says so
    too. A paused restart changed no setting: no Undo. Once superseded, the aborted card offers no
    compensation any more."""
    patch = StepSpec(id="patch-config", title="Patch spec.kafka.config",
                     args=PatchKafkaArgs(edits=(edit("config", "auto.create.topics.enable", value=True),)))
    roll = StepSpec(id="roll-0", title="Broker 0", args=FollowRollArgs(broker=0, pod="p-0", uid="u-0"),
                    compensation="x")
    steps = (Step(spec=patch, state=StepState.DONE, applied=True, observed={
        "previous": [{"path": ["config", "auto.create.topics.enable"], "value": None}], "uids": {"0": "u0"},
        "restarts": {"0": 0}, "generation_before": 3}), Step(spec=roll, state=StepState.PAUSED, applied=True))
    config = make_run(runbook="config", params={"change": "set auto.create.topics.enable=true"},
                      plan_hash=plan_hash([patch, roll]), state=RunState.PAUSED, approval=None,
                      pause_reason="broker 0 is down (CrashLoopBackOff)").model_copy(update={"steps": steps})
    blocks = validated(run_card_blocks(config))
    undo = find_button(blocks, UNDO_ACTION)
    assert undo is not None and "style" not in undo
    assert json.loads(undo["value"]) == {"run": "r-0123abcd", "step": "roll-0", "nonce": "", "plan": ""}
    assert "puts back auto.create.topics.enable: true -&gt; (not set)" in undo["confirm"]["text"]["text"]
    assert "an approver approves it" in undo["confirm"]["text"]["text"]
    assert "Or undo the change (auto.create.topics.enable: true -&gt; (not set))" in card_text(blocks)
    restart = validated(run_card_blocks(make_run(state=RunState.PAUSED, approval=None, pause_reason="gate")))
    assert find_button(restart, UNDO_ACTION) is None and find_button(restart, RETRY_ACTION) is not None
    superseded = config.model_copy(update={"state": RunState.ABORTED, "outcome": "Aborted by U0REQ. Superseded by "
                                           "undo run r-99999999, which puts back ..."})
    assert "Undo available" not in card_text(validated(run_card_blocks(superseded)))


def test_a_huge_run_still_fits_block_kit_limits() -> None:
    """200 steps with long titles, details and summaries: clipped and condensed, never over a limit."""
    run = make_run(200, title="Restart broker {i} " + "x" * 300, detail="d" * 2000, summary="s" * 5000)
    blocks = validated(run_card_blocks(run))
    assert find_button(blocks, APPROVE_ACTION) is not None, "the buttons survive condensing"
    assert len(fallback_text(run)) <= 3000


def test_markup_in_details_is_escaped() -> None:
    """A detail from an error message cannot inject a mention or a link into the card."""
    blocks = run_card_blocks(make_run(detail="<!channel> & <https://evil|click>"))
    text = card_text(blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp;" in text


def test_button_values_round_trip_and_forgeries_are_rejected() -> None:
    """Anything that is not a value this bot wrote decodes to None."""
    value = ButtonValue("r-1", "restart-0", "n", "h")
    assert ButtonValue.decode(value.encode()) == value
    for bad in (None, 42, "", "not json", "[]", '{"run": ""}', '{"run": 5}', '{"run":"r","nonce":7}', "x" * 3000):
        assert ButtonValue.decode(bad) is None, bad


def test_thread_lines_leave_out_bookkeeping_and_refusals() -> None:
    """Observations, advisory gate checks and refused clicks stay out of the channel's thread."""
    assert thread_line("observed", "worker", "restart-0", "", T0) is None
    assert thread_line("approve_refused", "U0OUT", "restart-0", "not_approver", T0) is None
    line = thread_line("approve", "U0APP", "restart-0", "approved by U0APP", T0)
    assert line is not None and "<@U0APP>" in line and "`restart-0`" in line
    line = thread_line("applied", "worker@bot-1:42", "restart-0", "asked Strimzi to roll pod-0", T0)
    assert line is not None and " by " not in line
