"""Fixtures for the Slack tests: the stub Web API (one server per session, emptied per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.cluster import APPROVER_GROUP, GROUP_MEMBER
from tests.slack.stub_web_api import StubWebApi


@pytest.fixture(scope="session")
def stub_api_server() -> Iterator[StubWebApi]:
    with StubWebApi() as api:
        yield api


@pytest.fixture
def slack_api(stub_api_server: StubWebApi) -> StubWebApi:
    """The stub Web API with no recorded calls, no injected failures, and one approver group."""
    stub_api_server.reset()
    stub_api_server.usergroups = {APPROVER_GROUP: [GROUP_MEMBER]}
    stub_api_server.socket_mode_url = None
    return stub_api_server
