"""Shared fixtures: a throwaway redis-server, the session-wide sandbox, waiting helpers.

Two collection rules keep ``make test-fast`` (``-m "not sandbox"``) honest and quick: a test that
asks for a sandbox fixture is marked ``sandbox`` even if its module forgot to say so, and tests in
the unit-test folders get a short timeout (a hang there is a bug, not a slow broker), unless a
test sets its own.

kafka-python clients run an I/O thread each (``kafka-io-<client id>``); one a test forgets to close
logs to pytest's closed streams after the brokers stop. The summary names any still running at the
end, with the test after which it was first seen.
"""

from __future__ import annotations

import threading

import pytest

pytest_plugins = ["tests.fixtures.redis_server", "tests.fixtures.sandbox", "tests.fixtures.mirror_pair"]

SANDBOX_FIXTURES = frozenset({"sandbox", "sandbox_factory", "sandbox_kube", "mirror_pair", "mirror_clusters"})
UNIT_TIMEOUT_S = {"runbooks": 20.0, "handlers": 60.0, "store": 60.0}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SANDBOX_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)
        folder = item.path.parent.name
        if folder in UNIT_TIMEOUT_S and item.get_closest_marker("timeout") is None \
                and item.get_closest_marker("sandbox") is None:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT_S[folder]))


_KAFKA_IO_FIRST_SEEN: dict[int, str] = {}  # thread ident -> the test after which it was running


def _kafka_io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kafka-io-") and t.is_alive()]


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    for thread in _kafka_io_threads():
        if thread.ident is not None:
            _KAFKA_IO_FIRST_SEEN.setdefault(thread.ident, nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    leaked = [(t.name, _KAFKA_IO_FIRST_SEEN.get(t.ident or 0, "?")) for t in _kafka_io_threads()]
    if leaked:
        terminalreporter.section("kafka-python clients never closed")
        for name, test in leaked:
            terminalreporter.write_line(f"{name}: running since {test}")
