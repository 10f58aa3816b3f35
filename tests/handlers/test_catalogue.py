"""The catalogue's declarations are what the verb table and the stored runs show."""

from __future__ import annotations

import pytest

from handlers.commands.service import config_params
from handlers.commands.verbs import VERBS, ConfigCommand
from runbooks.catalogue.config import CONFIG
from runbooks.catalogue.steps import RUNBOOKS

pytestmark = pytest.mark.timeout(5)


def test_each_runbooks_verb_is_a_mutating_verb_with_the_declarations_help() -> None:
    assert sorted(RUNBOOKS) == ["config", "mirror", "mirror-restart", "replace-broker", "restart", "scale",
                               "upgrade"]
    for verb, runbook in RUNBOOKS.items():
        spec = VERBS[verb]
        assert (spec.summary, spec.description, spec.mutating) == (runbook.summary, runbook.description, True)


@pytest.mark.parametrize("entries", [("b.key=2", "a.key=1"), ("log.retention.ms",)])
def test_a_config_change_is_stored_and_titled_as_it_was_typed(entries: tuple[str, ...]) -> None:
    action = "set" if "=" in entries[0] else "unset"
    params = config_params(ConfigCommand(cluster="prod", action=action, entries=entries))
    typed = f"{action} {' '.join(entries)}"
    assert CONFIG.stored(params)["change"] == typed
    assert CONFIG.title(params) == f"Config change ({typed})"
