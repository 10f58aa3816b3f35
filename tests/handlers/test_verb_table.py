"""The verb table: the help and usage it generates, its consistency with the command models, a new
verb as one entry, and durations."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, get_args

import pytest
from pydantic import BaseModel, ConfigDict

from handlers.commands.grammar import (
    VERBS,
    ArgSpec,
    OptionKind,
    OptionSpec,
    ParseError,
    VerbSpec,
    help_text,
    parse,
    parse_with,
    usage,
    verb_table,
)
from handlers.commands.verbs import (
    Command,
    RunsCommand,
    StatusCommand,
    cluster_name,
    duration,
)

# -- help -----------------------------------------------------------------------------------------


def test_help_text_lists_every_verb_from_the_table() -> None:
    """The table drives help: every verb's usage and summary appear in the overview."""
    text = help_text()
    for spec in VERBS.values():
        assert spec.usage.removeprefix("/kafka ") in text
        assert spec.summary in text


def test_help_can_leave_out_console_only_verbs() -> None:
    """Slack can ask for help without the console-only verbs."""
    text = help_text(include_console_only=False)
    assert "approve <run-id>" not in text
    assert "restart <cluster>" in text
    assert "(console only)" in help_text()


@pytest.mark.parametrize("verb", list(VERBS))
def test_help_for_each_verb_shows_its_usage_summary_and_examples(verb: str) -> None:
    """A verb's help starts with its usage line and includes its summary, options and examples."""
    spec = VERBS[verb]
    text = help_text(verb)
    assert text.startswith(f"Usage: {usage(verb)}")
    assert spec.summary in text
    assert all(example in text for example in spec.examples)
    assert all(option.name in text and option.help in text for option in spec.options)


def test_restart_help_states_the_safety_rules() -> None:
    """Restart's help says the order, the approvals and what --dry-run does."""
    text = help_text("restart")
    assert "one broker at a time, each step approved" in text
    assert "the active controller last" in text
    assert "--dry-run shows the plan and changes nothing" in text


def test_help_and_usage_for_an_unknown_verb_raise_parse_error() -> None:
    """Asking help_text or usage about an unknown verb suggests the closest."""
    with pytest.raises(ParseError) as caught:
        help_text("stauts")
    assert caught.value.suggestion == "status"
    with pytest.raises(ParseError):
        usage("nope")


def test_usage_lines_come_from_the_table() -> None:
    """Usage lines are generated from the arguments and options declared."""
    assert usage("restart") == "/kafka restart <cluster> [--brokers 1,2] [--dry-run]"
    assert usage("runs") == "/kafka runs [<cluster>]"
    assert usage("approve") == "/kafka approve <run-id> [<step-id>]"
    assert usage("clusters") == "/kafka clusters"


# -- the table ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("verb", "example"), [(s.name, e) for s in VERBS.values() for e in s.examples])
def test_every_example_in_the_table_parses_to_its_verb(verb: str, example: str) -> None:
    """Help never shows an example the grammar would refuse."""
    assert parse(example).kind == verb


def test_table_flags_console_only_and_mutating_verbs() -> None:
    """Only approve is console-only; the verbs that change runs or clusters are marked mutating."""
    assert {v for v, s in VERBS.items() if s.console_only} == {"approve"}
    assert {v for v, s in VERBS.items() if s.mutating} == {"restart", "upgrade", "config", "abort", "resume",
                                                          "undo", "approve", "replace-broker", "scale", "mirror",
                                                          "mirror-restart"}


def test_table_and_command_union_agree() -> None:
    """Every verb builds a member of Command whose kind is the verb's name, and vice versa."""
    assert {spec.command for spec in VERBS.values()} == set(get_args(Command))
    assert all(spec.command.model_fields["kind"].default == name for name, spec in VERBS.items())


class _Snooze(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["snooze"] = "snooze"
    cluster: str
    alerts: tuple[str, ...]
    for_: timedelta | None = None
    reason: str | None = None
    limit: int | None = None


_SNOOZE_TABLE = verb_table(VerbSpec(
    name="snooze",
    summary="Silence alerts for a while.",
    command=_Snooze,
    args=(ArgSpec(name="cluster", convert=cluster_name), ArgSpec(name="alerts", convert=str, repeat=True)),
    options=(
        OptionSpec(name="--for", field="for_", kind=OptionKind.DURATION, help="How long."),
        OptionSpec(name="--reason", kind=OptionKind.STRING, help="Why."),
        OptionSpec(name="--limit", kind=OptionKind.INT, help="At most."),
    ),
))


def test_a_new_verb_is_one_table_entry() -> None:
    """A verb with a repeated argument and duration, string and int options needs only its entry."""
    command = parse_with('snooze prod-east urp lag --for 1h30m --reason "deploy window" --limit=3', _SNOOZE_TABLE)
    assert command == _Snooze(cluster="prod-east", alerts=("urp", "lag"), for_=timedelta(hours=1, minutes=30),
                              reason="deploy window", limit=3)
    assert _SNOOZE_TABLE["snooze"].usage == (
        "/kafka snooze <cluster> <alerts>... [--for <30m>] [--reason <text>] [--limit <n>]")
    with pytest.raises(ParseError, match="snooze needs <alerts>"):
        parse_with("snooze prod-east", _SNOOZE_TABLE)


@pytest.mark.parametrize(("value", "expected"), [
    ("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)),
    ("1d", timedelta(days=1)), ("1h30m", timedelta(hours=1, minutes=30)),
])
def test_durations(value: str, expected: timedelta) -> None:
    """Durations are written with d, h, m and s units, largest first."""
    assert duration(value) == expected


@pytest.mark.parametrize("value", ["0m", "30", "m", "30m1h", "1.5h", "-1h", "1w"])
def test_bad_durations_are_rejected(value: str) -> None:
    """Zero, unitless, out-of-order or unknown-unit durations are errors naming the format."""
    with pytest.raises(ParseError, match="is not a duration"):
        parse_with(f"snooze prod-east urp --for={value}", _SNOOZE_TABLE)


def _mismatched(**changes: object) -> VerbSpec:
    fields: dict[str, object] = {"name": "status", "summary": "s", "command": StatusCommand,
                                 "args": (ArgSpec(name="cluster", convert=cluster_name),)}
    return VerbSpec(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", [
    _mismatched(args=()),  # a required model field has no argument
    _mismatched(name="state"),  # kind would not match the verb
    _mismatched(options=(OptionSpec(name="--force", kind=OptionKind.FLAG, help="h"),)),  # no such field
    _mismatched(options=(OptionSpec(name="--help", kind=OptionKind.FLAG, help="h"),)),  # reserved
    _mismatched(command=RunsCommand, name="runs", args=(
        ArgSpec(name="cluster", convert=cluster_name, optional=True), ArgSpec(name="x", convert=str))),
])
def test_verb_table_refuses_an_entry_that_disagrees_with_its_model(spec: VerbSpec) -> None:
    """A table entry out of step with its command model fails at import, not at a user's command."""
    with pytest.raises(ValueError, match="verb"):
        verb_table(spec)
