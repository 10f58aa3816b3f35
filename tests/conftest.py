"""Shared fixtures: a throwaway redis-server, the session-wide sandbox, waiting helpers.

Two collection rules keep ``make test-fast`` (``-m "not sandbox"``) honest and quick: a test that
asks for a sandbox fixture is marked ``sandbox`` even if its module forgot to say so, and tests in
the unit-test folders get a short timeout (a hang there is a bug, not a slow broker), unless a
test sets its own.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fixtures.redis_server", "tests.fixtures.sandbox"]

SANDBOX_FIXTURES = frozenset({"sandbox", "sandbox_factory", "sandbox_kube"})
UNIT_TIMEOUT_S = {"runbooks": 20.0, "handlers": 60.0, "store": 60.0}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SANDBOX_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)
        folder = item.path.parent.name
        if folder in UNIT_TIMEOUT_S and item.get_closest_marker("timeout") is None \
                and item.get_closest_marker("sandbox") is None:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT_S[folder]))
