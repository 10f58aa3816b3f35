"""Shared fixtures: a throwaway redis-server, the session-wide sandbox, waiting helpers."""

pytest_plugins = ["tests.fixtures.redis_server", "tests.fixtures.sandbox"]
