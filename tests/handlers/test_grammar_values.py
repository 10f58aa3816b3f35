"""The value rules as the grammar applies them: cluster names, run and step ids, echoed input."""

from __future__ import annotations

import pytest

from handlers.commands.grammar import (
    parse,
)
from handlers.commands.verbs import (
    ApproveCommand,
    ShowRunCommand,
    StatusCommand,
    quote,
)
from tests.handlers.grammar_cases import RUN, parse_error

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
