"""Fixtures the handler test modules share: ``make_bot``, the real command service and worker over the
in-memory Strimzi (defined with the change-runbook tests, which came first)."""

from tests.handlers.test_change_runbooks import make_bot

__all__ = ["make_bot"]
