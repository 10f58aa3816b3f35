"""The transition table: every (state, trigger) pair, and the diagram generated from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbooks.engine.diagram import mermaid
from runbooks.engine.models import TERMINAL_STATES, RunState
from runbooks.engine.transitions import TRANSITIONS, IllegalTransition, Trigger, is_legal, transition

S, T = RunState, Trigger

ALL_PAIRS = [(state, trigger) for state in RunState for trigger in Trigger]
LEGAL = [(s, t) for s, t in ALL_PAIRS if t in TRANSITIONS[s]]
ILLEGAL = [(s, t) for s, t in ALL_PAIRS if t not in TRANSITIONS[s]]
DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def _id(pair: tuple[RunState, Trigger]) -> str:
    return f"{pair[0].value}-{pair[1].value}"


def test_every_state_has_a_row() -> None:
    """The table has exactly one row per RunState, so no state is silently missing."""
    assert set(TRANSITIONS) == set(RunState)


def test_pairs_are_partitioned() -> None:
    """Legal and illegal pairs together cover every (state, trigger) pair exactly once."""
    assert len(LEGAL) + len(ILLEGAL) == len(RunState) * len(Trigger)
    assert LEGAL and ILLEGAL


@pytest.mark.parametrize(("state", "trigger"), LEGAL, ids=[_id(p) for p in LEGAL])
def test_legal_pair_gives_table_target(state: RunState, trigger: Trigger) -> None:
    """A legal (state, trigger) pair moves to the table's target and is reported legal."""
    assert transition(state, trigger) is TRANSITIONS[state][trigger]
    assert is_legal(state, trigger)


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL, ids=[_id(p) for p in ILLEGAL])
def test_illegal_pair_raises(state: RunState, trigger: Trigger) -> None:
    """An illegal (state, trigger) pair raises IllegalTransition naming the state and trigger."""
    assert not is_legal(state, trigger)
    with pytest.raises(IllegalTransition) as err:
        transition(state, trigger)
    assert err.value.state is state
    assert err.value.trigger is trigger
    assert state.value in str(err.value)


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES), ids=lambda s: s.value)
def test_terminal_states_have_no_outgoing_transitions(state: RunState) -> None:
    """Succeeded, failed and aborted are terminal: their row is empty and every trigger raises."""
    assert state.terminal
    assert TRANSITIONS[state] == {}
    for trigger in Trigger:
        with pytest.raises(IllegalTransition):
            transition(state, trigger)


def test_terminal_states_are_exactly_succeeded_failed_aborted() -> None:
    """Only succeeded, failed and aborted are terminal (docs/design.md §3)."""
    assert {s for s in RunState if s.terminal} == {S.SUCCEEDED, S.FAILED, S.ABORTED}


def test_every_trigger_is_used() -> None:
    """Every Trigger appears in at least one row: the enum carries no dead names."""
    used = {t for row in TRANSITIONS.values() for t in row}
    assert used == set(Trigger)


def test_every_state_is_reachable_from_planned() -> None:
    """Every state can be reached from planned through the table."""
    seen, todo = {S.PLANNED}, [S.PLANNED]
    while todo:
        for target in TRANSITIONS[todo.pop()].values():
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert seen == set(RunState)


@pytest.mark.parametrize("state", [s for s in RunState if not s.terminal], ids=lambda s: s.value)
def test_every_live_state_can_finish(state: RunState) -> None:
    """From every non-terminal state some path leads to a terminal state (no trap states)."""
    seen, todo = {state}, [state]
    while todo:
        for target in TRANSITIONS[todo.pop()].values():
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert seen & TERMINAL_STATES


def test_approval_is_the_only_way_from_awaiting_to_running() -> None:
    """awaiting_approval goes to running only through APPROVE, or through an abort that runs the
    cleanup steps (both human actions; never a timer or a gate result)."""
    into_running = [t for t, target in TRANSITIONS[S.AWAITING_APPROVAL].items() if target is S.RUNNING]
    assert into_running == [T.APPROVE, T.ABORT_TO_CLEANUP]


def test_timers_fail_closed() -> None:
    """Timer triggers (timeout, approval expiry) only ever lead to paused: nothing continues by itself."""
    for state, row in TRANSITIONS.items():
        for trigger in (T.TIMEOUT, T.APPROVAL_EXPIRED):
            if trigger in row:
                assert row[trigger] is S.PAUSED, (state, trigger)


def test_paused_is_left_only_by_human_decisions() -> None:
    """A paused run moves only on retry, skip (next/complete, or the next cleanup step or the end
    of a run being stopped) or abort (at once, or through its cleanup steps), all human actions."""
    assert set(TRANSITIONS[S.PAUSED]) == {
        T.RETRY_AWAITING, T.RETRY_RUNNING, T.RETRY_WAITING, T.ABORT, T.ABORT_TO_CLEANUP, T.NEXT_AWAITING,
        T.NEXT_RUNNING, T.COMPLETE, T.CLEANUP_NEXT, T.FAIL_AFTER_CLEANUP,
    }


def test_waiting_cannot_abort_immediately() -> None:
    """While an action is in flight (waiting) abort never ends the run: it is deferred to the next safe
    point, or (a step marked interruptible) goes on to the cleanup steps that undo it."""
    assert T.ABORT not in TRANSITIONS[S.WAITING]
    assert TRANSITIONS[S.WAITING][T.ABORT_TO_CLEANUP] is S.RUNNING
    assert TRANSITIONS[S.WAITING][T.ABORT_DEFERRED] is S.WAITING
    assert TRANSITIONS[S.WAITING][T.ABORT_AT_SAFE_POINT] is S.ABORTED


def test_only_complete_succeeds() -> None:
    """The only way to succeeded is COMPLETE, after the last step."""
    for row in TRANSITIONS.values():
        for trigger, target in row.items():
            if target is S.SUCCEEDED:
                assert trigger is T.COMPLETE


def test_diagram_draws_every_edge() -> None:
    """The generated Mermaid diagram names every legal edge of the table."""
    text = mermaid()
    assert text.startswith("stateDiagram-v2\n")
    for state, trigger in LEGAL:
        target = TRANSITIONS[state][trigger]
        edge = re.search(rf"^    {state.value} --> {target.value}: (.*)$", text, re.MULTILINE)
        assert edge is not None, (state, target)
        assert trigger.value in edge.group(1).split(", ")


def test_docs_diagram_matches_the_table() -> None:
    """docs/engine.md embeds exactly what `python -m runbooks.engine.diagram` prints (the docs cannot drift)."""
    blocks = re.findall(r"```mermaid\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1, "docs/engine.md must hold exactly one mermaid block"
    assert blocks[0] == mermaid()
