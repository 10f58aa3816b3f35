"""The Slack app manifests ask for the slash command, interactivity and exactly the bot's three scopes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "slack"


@pytest.mark.parametrize(("name", "socket_mode"), [("manifest.yaml", True), ("manifest-http.yaml", False)])
def test_manifest_declares_the_command_buttons_and_least_scopes(name: str, socket_mode: bool) -> None:
    """`/kafka`, interactivity on, scopes commands + chat:write + usergroups:read only; URLs only for HTTP."""
    manifest = yaml.safe_load((DEPLOY / name).read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == ["commands", "chat:write", "usergroups:read"]
    assert "user" not in manifest["oauth_config"]["scopes"]
    [command] = manifest["features"]["slash_commands"]
    settings = manifest["settings"]
    assert command["command"] == "/kafka" and settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is socket_mode
    if socket_mode:
        assert "url" not in command and "request_url" not in settings["interactivity"]
    else:
        assert command["url"].endswith("/slack/events") and settings["interactivity"]["request_url"] == command["url"]
