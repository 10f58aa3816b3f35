"""The /kafka command grammar: parsing, errors, help, and the verb table that drives them."""

from __future__ import annotations

import shlex
from datetime import timedelta
from typing import Annotated, Literal, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from handlers.commands import (
    AbortCommand,
    AlertsCommand,
    ApproveCommand,
    ClustersCommand,
    Command,
    ConfigCommand,
    HelpCommand,
    LagCommand,
    RestartCommand,
    ResumeCommand,
    RunsCommand,
    ShowRunCommand,
    SnoozeCommand,
    StatusCommand,
    UpgradeCommand,
    cluster_name,
    duration,
    quote,
)
from handlers.grammar import (
    VERBS,
    ArgSpec,
    OptionKind,
    OptionSpec,
    ParseError,
    VerbSpec,
    command_line,
    help_text,
    parse,
    parse_with,
    tokenize,
    usage,
    verb_table,
)

RUN = "r-7f3a09bc"


def parse_error(text: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse(text)
    return caught.value


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
    ("runs", "runs", RunsCommand()),
    ("runs", "runs prod-east", RunsCommand(cluster="prod-east")),
    ("run", f"run {RUN}", ShowRunCommand(run_id=RUN)),
    ("abort", f"abort {RUN}", AbortCommand(run_id=RUN)),
    ("resume", f"resume {RUN}", ResumeCommand(run_id=RUN)),
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


# -- tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['status "prod-east', "status 'prod-east", 'restart prod-east "'])
def test_unclosed_quote_is_a_clear_error_with_usage(text: str) -> None:
    """An unclosed quote says which quote is open, and shows the verb's usage."""
    error = parse_error(text)
    assert "is never closed" in error.message
    assert error.usage == usage(text.split()[0])


def test_unclosed_quote_before_the_verb_has_no_usage() -> None:
    """When the verb itself is inside the open quote, there is no usage to show."""
    error = parse_error('"status prod-east')
    assert "double quote" in error.message
    assert error.usage is None
    with pytest.raises(ParseError, match="never closed"):
        tokenize("'abc")


def test_quotes_group_words_and_the_value_is_then_validated() -> None:
    """Quoted words are one argument; a space inside makes an invalid cluster name."""
    assert parse('status "prod-east"') == StatusCommand(cluster="prod-east")
    assert '"prod east" is not a valid cluster name' in parse_error("status 'prod east'").message


def test_curly_quotes_and_unicode_spaces_are_read_as_typed_meant() -> None:
    """Curly quotes (chat autocorrect) act as plain quotes; a no-break space separates words."""
    assert parse("status “prod-east”") == StatusCommand(cluster="prod-east")
    assert parse("status\u00a0prod-east") == StatusCommand(cluster="prod-east")


def test_trailing_backslash_is_an_error() -> None:
    """A lone backslash at the end is reported rather than silently dropped."""
    assert "lone backslash" in parse_error("status prod-east \\").message


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("ab -\"'\\\t\n=,"))))
def test_tokenizer_agrees_with_shlex(text: str) -> None:
    """On plain ASCII, words split exactly as shlex.split(posix=True), errors included."""
    try:
        expected = shlex.split(text)
    except ValueError:
        with pytest.raises(ParseError):
            tokenize(text)
    else:
        assert tokenize(text) == expected


# -- the /kafka prefix and empty input ------------------------------------------------------------


@pytest.mark.parametrize("text", ["/kafka status prod-east", "kafka status prod-east", "/KAFKA  status prod-east"])
def test_leading_kafka_is_tolerated(text: str) -> None:
    """The console may pass the whole line, with /kafka or kafka in front."""
    assert parse(text) == StatusCommand(cluster="prod-east")


def test_a_cluster_named_kafka_is_still_a_cluster() -> None:
    """Only the first word is taken as the prefix."""
    assert parse("kafka status kafka") == StatusCommand(cluster="kafka")


@pytest.mark.parametrize("text", ["", "   ", "/kafka", "kafka", "\n"])
def test_empty_input_asks_for_help(text: str) -> None:
    """No command at all is a request for the general help."""
    assert parse(text) == HelpCommand()


# -- value rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "prod-east", "prod.east", "k8s-1.eu-west", "0", "a" * 253])
def test_valid_cluster_names(name: str) -> None:
    """RFC 1123 subdomain names up to 253 characters are valid cluster names."""
    assert parse(f"status {name}") == StatusCommand(cluster=name)


@pytest.mark.parametrize(("name", "fragment"), [
    ("Prod_East", "use lowercase letters, digits, '-' and '.' (did you mean \"prod-east\"?)"),
    ("prod_east", 'did you mean "prod-east"?'),
    ("prod/east", "use lowercase letters, digits, '-' and '.'"),
    ("prod-", "must start and end with a letter or digit"),
    ("prod.", "must start and end with a letter or digit"),
    ("a..b", "must start and end with a letter or digit"),
    ("a.-b", "must start and end with a letter or digit"),
    ("a" * 254, "it has 254 characters, the limit is 253"),
    ('""', "the cluster name is empty"),
])
def test_invalid_cluster_names(name: str, fragment: str) -> None:
    """Names Kubernetes would refuse are rejected, with the rule broken and, where easy, the fix."""
    assert fragment in parse_error(f"status {name}").message


def test_cluster_name_error_reads_as_specified() -> None:
    """The message quotes the token and states the allowed characters."""
    assert parse_error("status Prod_East").message.startswith(
        "\"Prod_East\" is not a valid cluster name: use lowercase letters, digits, '-' and '.'")


@pytest.mark.parametrize("good", ["r-7f3a", RUN, "r-" + "0" * 32])
def test_valid_run_ids(good: str) -> None:
    """Run ids are r- and 4 to 32 lowercase hex digits."""
    assert parse(f"run {good}") == ShowRunCommand(run_id=good)


@pytest.mark.parametrize(("bad", "fragment"), [
    ("r-7f3", "run ids look like r-7f3a09bc"),
    ("r-" + "0" * 33, "run ids look like r-7f3a09bc"),
    ("r-7f3g", "run ids look like r-7f3a09bc"),
    ("R-7F3A09BC", 'did you mean "r-7f3a09bc"?'),
    ("7f3a09bc", 'did you mean "r-7f3a09bc"?'),
])
def test_invalid_run_ids(bad: str, fragment: str) -> None:
    """Anything else is rejected, with the likely id suggested for case or a missing prefix."""
    assert fragment in parse_error(f"abort {bad}").message


def test_step_id_rules() -> None:
    """Step ids are up to 41 lowercase letters, digits and '-', not starting with '-'."""
    assert parse(f"approve {RUN} {'a' * 41}") == ApproveCommand(run_id=RUN, step_id="a" * 41)
    for bad in ("a" * 42, "-3b", "3B", "3_b"):
        assert "is not a step id" in parse_error(f"approve {RUN} {bad}").message


def test_echoed_input_is_bounded_and_escaped() -> None:
    """A long or control-character token is shortened and escaped when quoted back."""
    message = parse_error("status " + "X" * 5000).message
    assert len(message) < 200
    assert quote("a\u202eb\nc") == '"a\\u202eb\\u000ac"'


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
                                                          "approve"}


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


_COMMAND_JSON: TypeAdapter[Command] = TypeAdapter(Annotated[Command, Field(discriminator="kind")])


# -- properties -----------------------------------------------------------------------------------

_names = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,5}){0,2}", fullmatch=True)
_run_ids = st.from_regex(r"r-[0-9a-f]{4,32}", fullmatch=True)
_commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(HelpCommand, verb=st.none() | st.sampled_from(list(VERBS))),
    st.just(ClustersCommand()),
    st.builds(StatusCommand, cluster=_names),
    st.builds(RestartCommand, cluster=_names, dry_run=st.booleans(), brokers=st.none() | st.lists(
        st.integers(0, 2**31 - 1), min_size=1, max_size=6, unique=True).map(tuple)),
    st.builds(UpgradeCommand, cluster=_names, dry_run=st.booleans(),
              version=st.from_regex(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True)),
    st.builds(ConfigCommand, cluster=_names, action=st.just("set"), dry_run=st.booleans(),
              entries=st.lists(st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,3}=[!-~]{1,12}", fullmatch=True),
                               min_size=1, max_size=4, unique_by=lambda e: e.partition("=")[0]).map(tuple)),
    st.builds(ConfigCommand, cluster=_names, action=st.just("unset"), dry_run=st.booleans(),
              entries=st.lists(st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,3}", fullmatch=True),
                               min_size=1, max_size=4, unique=True).map(tuple)),
    st.builds(RunsCommand, cluster=st.none() | _names),
    st.builds(ShowRunCommand, run_id=_run_ids),
    st.builds(AbortCommand, run_id=_run_ids),
    st.builds(ResumeCommand, run_id=_run_ids),
    # Group ids are free text; typed curly quotes are read as plain ones, so they cannot round-trip.
    st.builds(LagCommand, cluster=_names, group=st.none() | st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="“”„‘’"),
        min_size=1, max_size=20).filter(lambda g: not g.startswith("-"))),
    st.builds(AlertsCommand, cluster=_names),
    st.builds(SnoozeCommand, alert_id=st.from_regex(r"a-[0-9a-f]{8}", fullmatch=True),
              duration=st.sampled_from(["30m", "2h", "1d", "1h30m", "45s", "7d"])),
    st.builds(ApproveCommand, run_id=_run_ids,
              step_id=st.none() | st.from_regex(r"[a-z0-9][a-z0-9-]{0,40}", fullmatch=True)),
)


@given(_commands)
def test_command_line_round_trips(command: Command) -> None:
    """Writing a command as a line and parsing it back gives the same command; so does JSON."""
    assert parse(command_line(command)) == command
    assert _COMMAND_JSON.validate_json(_COMMAND_JSON.dump_json(command)) == command


def _check_total(text: str) -> None:
    try:
        command = parse(text)
    except ParseError as error:
        assert error.message.strip()
        assert error.render().strip()
        assert error.usage is None or error.usage == usage(error.verb or "")
    else:
        assert isinstance(command, get_args(Command))


@settings(max_examples=500)
@given(st.text())
def test_parse_raises_only_parse_error_on_arbitrary_text(text: str) -> None:
    """Any text parses to a command or raises ParseError with a non-empty rendering."""
    _check_total(text)


_WORDS = [*VERBS, "/kafka", "kafka", "set", "unset", "a.b=1", "a.b", "a=", "=1", "4.3.1", "v4",
          "prod-east", "Prod_East", "a..b", "", " ", RUN, "R-7F3A", "3b",
          "--brokers", "--brokers=", "--brokers=1,2", "1,2", "1,1", "-1", "x", "--dry-run", "--dry-run=1",
          "-h", "--help", "--", "-", "=", '"', "'", "\\", "“", "\u00a0", "--step", "0" * 5000]


@settings(max_examples=1000)
@given(st.lists(st.sampled_from(_WORDS), max_size=7), st.sampled_from([" ", "\t", "  "]))
def test_parse_raises_only_parse_error_on_near_miss_commands(words: list[str], sep: str) -> None:
    """Sequences of plausible words, which reach deep into the grammar, behave the same way."""
    _check_total(sep.join(words))
