"""The /kafka command grammar: parsing and its errors, verb by verb and option by option. The tokens,
the value rules, the verb table and help, and the properties have modules of their own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from handlers.commands.grammar import (
    VERBS,
    parse,
    usage,
)
from handlers.commands.verbs import (
    AbortCommand,
    AlertsCommand,
    ApproveCommand,
    ClustersCommand,
    Command,
    ConfigCommand,
    HelpCommand,
    LagCommand,
    MirrorCommand,
    MirrorRestartCommand,
    ReplaceBrokerCommand,
    RestartCommand,
    ResumeCommand,
    RunsCommand,
    ScaleCommand,
    ShowRunCommand,
    SnoozeCommand,
    StatusCommand,
    UndoCommand,
    UpgradeCommand,
    cluster_name,
)
from tests.handlers.grammar_cases import RUN, parse_error

# -- one valid parse and the usual mistakes, for every verb ---------------------------------------

VALID = [
    ("help", "help", HelpCommand()),
    ("help", "help restart", HelpCommand(verb="restart")),
    ("clusters", "clusters", ClustersCommand()),
    ("status", "status prod-east", StatusCommand(cluster="prod-east")),
    ("restart", "restart prod-east", RestartCommand(cluster="prod-east")),
    ("restart", "restart prod-east --brokers 1,2 --dry-run",
     RestartCommand(cluster="prod-east", brokers=(1, 2), dry_run=True)),
    ("upgrade", "upgrade prod-east 4.3.1", UpgradeCommand(cluster="prod-east", version="4.3.1")),
    ("upgrade", "upgrade prod-east 4.3.1 --dry-run",
     UpgradeCommand(cluster="prod-east", version="4.3.1", dry_run=True)),
    ("config", "config prod-east set log.retention.ms=86400000",
     ConfigCommand(cluster="prod-east", action="set", entries=("log.retention.ms=86400000",))),
    ("config", "config prod-east set a.b=1 c.d=x,y --dry-run",
     ConfigCommand(cluster="prod-east", action="set", entries=("a.b=1", "c.d=x,y"), dry_run=True)),
    ("config", "config prod-east unset log.retention.ms log.segment.bytes",
     ConfigCommand(cluster="prod-east", action="unset", entries=("log.retention.ms", "log.segment.bytes"))),
    ("replace-broker", "replace-broker prod-east 3", ReplaceBrokerCommand(cluster="prod-east", broker=3)),
    ("replace-broker", "replace-broker prod-east 3 --throttle 10MB/s --keep-data --dry-run",
     ReplaceBrokerCommand(cluster="prod-east", broker=3, throttle="10MB/s", keep_data=True, dry_run=True)),
    ("scale", "scale prod-east brokers 4", ScaleCommand(cluster="prod-east", pool="brokers", replicas=4)),
    ("scale", "scale prod-east brokers 2 --remove-ids 3,4 --throttle 1GiB/s",
     ScaleCommand(cluster="prod-east", pool="brokers", replicas=2, remove_ids=(3, 4), throttle="1GiB/s")),
    ("mirror", "mirror east west --topics 'orders.*' --groups billing --dry-run",
     MirrorCommand(source="east", target="west", topics="orders.*", groups="billing", dry_run=True)),
    ("mirror", "mirror status east-to-west", MirrorCommand(source="status", target="east-to-west")),
    ("mirror-restart", "mirror-restart prod-west dr 'east->west.MirrorSourceConnector' --task 0",
     MirrorRestartCommand(cluster="prod-west", mirror="dr", connector="east->west.MirrorSourceConnector", task=0)),
    ("runs", "runs", RunsCommand()),
    ("runs", "runs prod-east", RunsCommand(cluster="prod-east")),
    ("run", f"run {RUN}", ShowRunCommand(run_id=RUN)),
    ("abort", f"abort {RUN}", AbortCommand(run_id=RUN)),
    ("resume", f"resume {RUN}", ResumeCommand(run_id=RUN)),
    ("undo", f"undo prod-east {RUN}", UndoCommand(cluster="prod-east", run_id=RUN)),
    ("approve", f"approve {RUN}", ApproveCommand(run_id=RUN)),
    ("approve", f"approve {RUN} 3b", ApproveCommand(run_id=RUN, step_id="3b")),
    # the alert verbs (issue #6); more cases in test_alert_commands.py
    ("lag", "lag prod-east", LagCommand(cluster="prod-east")),
    ("lag", "lag prod-east 'orders app'", LagCommand(cluster="prod-east", group="orders app")),
    ("alerts", "alerts prod-east", AlertsCommand(cluster="prod-east")),
    ("snooze", "snooze a-1b2c3d4e 2h", SnoozeCommand(alert_id="a-1b2c3d4e", duration="2h")),
]

# (verb, input, a fragment the message must contain: the problem, usually the offending token)
INVALID = [
    ("help", "help restart now", 'unexpected extra argument "now"'),
    ("help", "help restrat", 'unknown command "restrat" (did you mean "restart"?)'),
    ("help", "help --all", 'unknown option "--all"'),
    ("clusters", "clusters prod-east", 'clusters takes no arguments, but got "prod-east"'),
    ("clusters", "clusters --all", 'unknown option "--all"; clusters takes no options'),
    ("status", "status", "status needs <cluster>"),
    ("status", "status prod east", 'unexpected extra argument "east"'),
    ("status", "status Prod_East", '"Prod_East" is not a valid cluster name'),
    ("status", "status prod-east --verbose", 'unknown option "--verbose"'),
    ("restart", "restart", "restart needs <cluster>"),
    ("restart", "restart prod-east now", 'unexpected extra argument "now"'),
    ("restart", "restart Prod_East", '"Prod_East" is not a valid cluster name'),
    ("restart", "restart prod-east --force", 'unknown option "--force"'),
    ("restart", "restart prod-east --brokers one", '--brokers: "one" is not a valid broker id'),
    ("restart", "restart prod-east --dry-run=yes", '--dry-run takes no value, but got "--dry-run=yes"'),
    ("replace-broker", "replace-broker prod-east", "replace-broker needs <broker>"),
    ("replace-broker", "replace-broker prod-east three", '"three" is not a valid broker id'),
    ("replace-broker", "replace-broker prod-east 3 --throttle", "--throttle needs a value"),
    ("mirror", "mirror east west", "mirror <source> <target> needs --topics <regex>"),
    ("mirror", "mirror pause dr --topics x", "mirror pause <name> takes no --topics"),
    ("scale", "scale prod-east brokers", "scale needs <replicas>"),
    ("mirror-restart", "mirror-restart prod-west dr", "mirror-restart needs <connector>"),
    ("mirror-restart", "mirror-restart prod-west dr c --task x", "--task"),
    ("scale", "scale prod-east Brokers 3", '"Brokers" is not a valid node pool name'),
    ("scale", "scale prod-east brokers 3 --remove-ids x", '--remove-ids: "x" is not a valid broker id'),
    ("upgrade", "upgrade prod-east", "upgrade needs <version> (e.g. 4.3.1)"),
    ("upgrade", "upgrade", "upgrade needs <cluster>"),
    ("upgrade", "upgrade prod-east v4.3.1",
     '"v4.3.1" is not a Kafka version: write it like 4.3.1 (did you mean "4.3.1"?)'),
    ("upgrade", "upgrade prod-east 4.3", '"4.3" is not a Kafka version'),
    ("upgrade", "upgrade prod-east 4.3.1 4.3.2", 'unexpected extra argument "4.3.2"'),
    ("upgrade", "upgrade prod-east 4.3.1 --force", 'unknown option "--force"'),
    ("upgrade", "upgrade Prod 4.3.1", '"Prod" is not a valid cluster name'),
    ("config", "config prod-east", "config needs <set|unset>"),
    ("config", "config prod-east set", "config needs <key[=value]> (e.g. log.retention.ms=86400000)"),
    ("config", "config prod-east put a=1", '"put" is not an action: use set k=v [k=v ...] or unset k [k ...]'),
    ("config", "config prod-east sett a=1", '(did you mean "set"?)'),
    ("config", "config prod-east set log.retention.ms", 'set takes key=value pairs'),
    ("config", "config prod-east unset log.retention.ms=1", "unset takes key names only"),
    ("config", "config prod-east set a=1 a=2", "a is given twice"),
    ("config", "config prod-east set Log.Retention=1", '"Log.Retention" is not a Kafka config name'),
    ("config", "config prod-east set a=", "has no value after '='"),
    ("config", 'config prod-east set "a=x\ny"', "contains a control character"),
    ("config", "config prod-east set a=1 --now", 'unknown option "--now"'),
    ("runs", "runs prod-east west", 'unexpected extra argument "west"'),
    ("runs", "runs PROD", '"PROD" is not a valid cluster name'),
    ("runs", "runs --all", 'unknown option "--all"'),
    ("run", "run", "run needs <run-id>"),
    ("run", f"run {RUN} {RUN}", f'unexpected extra argument "{RUN}"'),
    ("run", "run restart", '"restart" is not a run id'),
    ("run", f"run {RUN} --follow", 'unknown option "--follow"'),
    ("abort", "abort", "abort needs <run-id>"),
    ("abort", f"abort {RUN} now", 'unexpected extra argument "now"'),
    ("abort", "abort prod-east", '"prod-east" is not a run id'),
    ("abort", f"abort {RUN} --force", 'unknown option "--force"'),
    ("resume", "resume", "resume needs <run-id>"),
    ("resume", f"resume {RUN} 3b", 'unexpected extra argument "3b"'),
    ("resume", "resume r-xyz", '"r-xyz" is not a run id'),
    ("resume", f"resume {RUN} --skip", 'unknown option "--skip"'),
    ("undo", "undo", "undo needs <cluster>"),
    ("undo", "undo prod-east", "undo needs <run-id> (/kafka runs lists them)"),
    ("undo", f"undo {RUN}", f'"{RUN}" is a run id, but undo names the cluster first: undo <cluster> {RUN}'),
    ("undo", f"undo Prod_East {RUN}", '"Prod_East" is not a valid cluster name'),
    ("undo", "undo prod-east restart", '"restart" is not a run id'),
    ("undo", f"undo prod-east {RUN} {RUN}", f'unexpected extra argument "{RUN}"'),
    ("undo", f"undo prod-east {RUN} --force", 'unknown option "--force"'),
    ("approve", "approve", "approve needs <run-id>"),
    ("approve", f"approve {RUN} 3b 3c", 'unexpected extra argument "3c"'),
    ("approve", "approve 3b", '"3b" is not a run id'),
    ("approve", f"approve {RUN} Step_3", '"Step_3" is not a step id'),
    ("approve", f"approve {RUN} --all", 'unknown option "--all"'),
    ("lag", "lag", "lag needs <cluster>"),
    ("lag", "lag prod-east g1 g2", 'unexpected extra argument "g2"'),
    ("alerts", "alerts", "alerts needs <cluster>"),
    ("alerts", "alerts Prod_East", '"Prod_East" is not a valid cluster name'),
    ("snooze", "snooze a-1b2c3d4e", "snooze needs <duration> (e.g. 30m, 2h or 1d)"),
    ("snooze", "snooze 1b2c3d4e 2h", '"1b2c3d4e" is not an alert id'),
]


@pytest.mark.parametrize(("verb", "text", "expected"), VALID)
def test_valid_input_parses_to_its_command(verb: str, text: str, expected: Command) -> None:
    """Each verb's well-formed input parses to the matching frozen command."""
    command = parse(text)
    assert command == expected
    assert command.kind == verb


@pytest.mark.parametrize(("verb", "text", "fragment"), INVALID)
def test_bad_input_names_the_problem_and_shows_the_verbs_usage(verb: str, text: str, fragment: str) -> None:
    """A mistake raises ParseError saying what is wrong, with that verb's usage line."""
    error = parse_error(text)
    assert fragment in error.message
    assert error.verb == verb
    assert error.usage == usage(verb)
    assert error.render() == f"{error.message}\nUsage: {usage(verb)}"


def test_every_verb_has_valid_and_invalid_cases() -> None:
    """The cases above cover every verb in the table, so a new verb cannot go untested."""
    assert {verb for verb, _, _ in VALID} == set(VERBS)
    assert {verb for verb, _, _ in INVALID} == set(VERBS)


def test_missing_argument_says_where_to_find_one() -> None:
    """A missing cluster or run id points at the command that lists them."""
    assert "/kafka clusters lists them" in parse_error("restart").message
    assert "/kafka runs lists them" in parse_error("abort").message


# -- verbs ----------------------------------------------------------------------------------------


def test_unknown_verb_suggests_the_closest_and_lists_all() -> None:
    """An unknown verb names the closest known one and lists every verb."""
    error = parse_error("restrat prod-east")
    assert error.message == 'unknown command "restrat"; did you mean "restart"?'
    assert error.suggestion == "restart"
    assert error.choices == tuple(VERBS)
    assert error.usage is None
    assert "Commands: " + ", ".join(VERBS) in error.render()


def test_unknown_verb_without_a_close_match_only_lists_the_verbs() -> None:
    """With nothing close, the error offers no guess but still lists the verbs."""
    error = parse_error("xyzzy")
    assert error.suggestion is None
    assert "did you mean" not in error.message
    assert error.choices == tuple(VERBS)


def test_a_prefix_of_a_verb_is_suggested_never_run() -> None:
    """An abbreviation is refused with a suggestion: the grammar never guesses a mutating verb."""
    assert parse_error("rest prod-east").suggestion == "restart"


def test_a_word_starting_with_a_dash_is_an_option_not_a_name() -> None:
    """A word like -prod reads as an (unknown) option; the name rule itself also refuses it."""
    assert parse_error("status -prod").message.startswith('unknown option "-prod"')
    with pytest.raises(ValueError, match="must start and end with a letter or digit"):
        cluster_name("-prod")


def test_option_before_the_verb_is_explained() -> None:
    """An option typed before any verb says that the command comes first."""
    assert "start with a command" in parse_error("--dry-run restart prod-east").message


def test_verb_is_case_insensitive() -> None:
    """A capitalised verb (phone keyboards) still parses."""
    assert parse("Restart prod-east") == RestartCommand(cluster="prod-east")
    assert parse("help Abort") == HelpCommand(verb="abort")


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "restart prod-east --brokers 1,2 --dry-run",
    "restart --dry-run prod-east --brokers 1,2",
    "restart --brokers 1,2 --dry-run prod-east",
    "restart --brokers=1,2 prod-east --dry-run",
])
def test_options_may_appear_anywhere_after_the_verb(text: str) -> None:
    """Options parse the same before, between or after the positionals."""
    assert parse(text) == RestartCommand(cluster="prod-east", brokers=(1, 2), dry_run=True)


def test_brokers_with_equals_and_with_space_are_the_same() -> None:
    """--brokers=1,2 and --brokers 1,2 give the same command, keeping the order typed."""
    assert parse("restart prod-east --brokers=1,2") == parse("restart prod-east --brokers 1,2")
    assert parse("restart prod-east --brokers 4,0,2").brokers == (4, 0, 2)  # type: ignore[union-attr]


def test_quoted_broker_list_may_contain_spaces() -> None:
    """A quoted list with spaces after the commas is accepted."""
    assert parse('restart prod-east --brokers "1, 2"') == RestartCommand(cluster="prod-east", brokers=(1, 2))


@pytest.mark.parametrize(("value", "fragment"), [
    ("1,1", 'broker 1 is listed twice in "1,1"'),
    ("2,1,2", "broker 2 is listed twice"),
    ("-1", '"-1" is not a valid broker id: it must be 0 or more'),
    ("1,-2", '"-2" is not a valid broker id: it must be 0 or more'),
    ("x", '"x" is not a valid broker id: use a whole number'),
    ("1.5", '"1.5" is not a valid broker id'),
    ("+1", '"+1" is not a valid broker id'),
    ("١", '"١" is not a valid broker id'),  # an Arabic-Indic digit, which int() would accept
    ("1,,2", "has an empty item"),
    ("1,", "has an empty item"),
    ("2147483648", "the largest is 2147483647"),
    ("9" * 5000, "the largest is 2147483647"),
])
def test_bad_broker_lists_are_rejected(value: str, fragment: str) -> None:
    """Duplicate, negative, non-numeric, empty or out-of-range broker ids are rejected."""
    error = parse_error(f"restart prod-east --brokers={value}")
    assert fragment in error.message
    assert error.message.startswith("--brokers: ")


def test_option_value_missing_is_reported_and_the_next_option_not_eaten() -> None:
    """--brokers with no value says so, instead of taking the following option as its value."""
    for text in ("restart prod-east --brokers", "restart prod-east --brokers --dry-run",
                 "restart prod-east --brokers="):
        assert parse_error(text).message == "--brokers needs a value, e.g. --brokers 1,2"


def test_repeated_option_is_rejected() -> None:
    """Giving an option twice is an error, even with the same value."""
    assert parse_error("restart prod-east --dry-run --dry-run").message == "--dry-run is given twice: give it once"
    assert "given twice" in parse_error("restart prod-east --brokers 1 --brokers=1").message


def test_unknown_option_suggests_the_closest() -> None:
    """A misspelt option names the option it resembles."""
    assert parse_error("restart prod-east --dryrun").message == 'unknown option "--dryrun"; did you mean --dry-run?'


def test_help_option_anywhere_asks_for_that_verbs_help() -> None:
    """--help or -h after a verb returns that verb's help, even next to a mistake."""
    assert parse("restart --help") == HelpCommand(verb="restart")
    assert parse("restart Bad_Name -h") == HelpCommand(verb="restart")
    assert parse("--help") == HelpCommand()
    assert parse("-h status") == HelpCommand(verb="status")


# -- the command models ---------------------------------------------------------------------------


def test_commands_are_frozen_and_hashable() -> None:
    """Commands cannot be changed after parsing and can be used as keys."""
    command = parse("restart prod-east --brokers 1")
    with pytest.raises(ValidationError):
        command.cluster = "other"  # type: ignore[misc,union-attr]
    assert hash(command) == hash(parse("restart prod-east --brokers=1"))


def test_models_apply_the_same_rules_when_built_directly() -> None:
    """A command built from a button payload is validated like typed input."""
    with pytest.raises(ValidationError, match="not a valid cluster name"):
        RestartCommand(cluster="Prod_East")
    with pytest.raises(ValidationError, match="listed twice"):
        RestartCommand(cluster="prod", brokers=(1, 1))
    with pytest.raises(ValidationError, match="broker list is empty"):
        RestartCommand(cluster="prod", brokers=())
    with pytest.raises(ValidationError, match="not a run id"):
        AbortCommand(run_id="7")
