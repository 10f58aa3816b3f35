"""Bad input for /kafka lag, /kafka alerts and /kafka snooze: each names the problem and shows the
verb's usage (the table-wide cases are in test_grammar.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.commands.grammar import ParseError, parse, usage
from handlers.commands.verbs import LagCommand, SnoozeCommand

INVALID = [
    ("lag", "lag --group g1 prod", 'unknown option "--group"'),
    ("lag", "lag PROD", '"PROD" is not a valid cluster name'),
    ("lag", "lag prod " + "g" * 300, "has 300 characters, the limit here is 255"),
    ("lag", 'lag prod "a\tb"', "contains a control character"),
    ("lag", 'lag prod ""', "the group id is empty"),
    ("alerts", "alerts prod west", 'unexpected extra argument "west"'),
    ("alerts", "alerts prod --all", 'unknown option "--all"'),
    ("snooze", "snooze", "snooze needs <alert> (/kafka alerts <cluster> lists them)"),
    ("snooze", "snooze A-1B2C3D4E 2h", 'did you mean "a-1b2c3d4e"?'),
    ("snooze", "snooze 1b2c3d4e 2h", 'did you mean "a-1b2c3d4e"?'),
    ("snooze", "snooze a-1b2c3d4e two-hours", '"two-hours" is not a duration'),
    ("snooze", "snooze a-1b2c3d4e 0m", "it must be longer than zero"),
    ("snooze", "snooze a-1b2c3d4e 8d", "too long to snooze: the most is 7d"),
    ("snooze", "snooze a-1b2c3d4e 2h 3h", 'unexpected extra argument "3h"'),
    ("snooze", "snooze a-1b2c3d4e -2h", '"-2h" is not a duration'),
    ("snooze", "snooze prod-east 2h", '"prod-east" is not an alert id'),
]


@pytest.mark.parametrize(("verb", "text", "fragment"), INVALID)
def test_bad_alert_command_input_is_explained_with_the_usage(verb: str, text: str, fragment: str) -> None:
    """The message says what is wrong with the input, and the verb's usage follows."""
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert fragment in caught.value.render()
    assert caught.value.usage == usage(verb)


def test_snooze_durations_are_normalised_and_read_back() -> None:
    """90m is kept as 1h30m and means 90 minutes."""
    command = parse("snooze a-1b2c3d4e 90m")
    assert isinstance(command, SnoozeCommand) and command.duration == "1h30m"
    assert command.length == timedelta(minutes=90)


def test_a_group_id_may_hold_spaces_and_punctuation_when_quoted() -> None:
    """Kafka group ids are free text: quoting keeps them whole."""
    command = parse("lag prod 'billing: nightly (v2)'")
    assert isinstance(command, LagCommand) and command.group == "billing: nightly (v2)"


def test_models_built_elsewhere_follow_the_same_rules() -> None:
    """A button payload or JSON line cannot smuggle in what the grammar refuses."""
    with pytest.raises(ValueError, match="not an alert id"):
        SnoozeCommand(alert_id="x", duration="2h")
    with pytest.raises(ValueError, match="too long to snooze"):
        SnoozeCommand(alert_id="a-1b2c3d4e", duration="30d")
