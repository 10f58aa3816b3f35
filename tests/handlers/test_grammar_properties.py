"""Properties of the grammar, with hypothesis: every command round-trips through its command line,
and no text makes parse raise anything but ParseError."""

from __future__ import annotations

from typing import Annotated, get_args

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter

from handlers.commands.grammar import (
    VERBS,
    ParseError,
    command_line,
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
    RestartCommand,
    ResumeCommand,
    RunsCommand,
    ShowRunCommand,
    SnoozeCommand,
    StatusCommand,
    UpgradeCommand,
)
from tests.handlers.grammar_cases import RUN

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


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_parse_raises_only_parse_error_on_arbitrary_text(text: str) -> None:
    """Any text parses to a command or raises ParseError with a non-empty rendering."""
    _check_total(text)


_WORDS = [*VERBS, "/kafka", "kafka", "set", "unset", "a.b=1", "a.b", "a=", "=1", "4.3.1", "v4",
          "prod-east", "Prod_East", "a..b", "", " ", RUN, "R-7F3A", "3b",
          "--brokers", "--brokers=", "--brokers=1,2", "1,2", "1,1", "-1", "x", "--dry-run", "--dry-run=1",
          "-h", "--help", "--", "-", "=", '"', "'", "\\", "“", "\u00a0", "--step", "0" * 5000]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=7), st.sampled_from([" ", "\t", "  "]))
def test_parse_raises_only_parse_error_on_near_miss_commands(words: list[str], sep: str) -> None:
    """Sequences of plausible words, which reach deep into the grammar, behave the same way."""
    _check_total(sep.join(words))
