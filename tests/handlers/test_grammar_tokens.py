"""The /kafka command grammar's tokens: quotes, backslashes and unicode spaces as chat clients send
them, words split as shlex does, the /kafka prefix, and empty input."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.commands.grammar import ParseError, parse, tokenize, usage
from handlers.commands.verbs import HelpCommand, StatusCommand
from tests.handlers.grammar_cases import parse_error

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


@settings(max_examples=300, deadline=None)
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
