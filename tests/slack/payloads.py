"""Slack requests as Slack sends them: slash commands and block_actions, form-encoded and signed.

Signing is ``slack_sdk.signature.SignatureVerifier.generate_signature``, the same code Bolt's
request verification checks against, so a test request is accepted exactly when Slack's would be.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the shape of a real one: 32 letters and digits
BOT_TOKEN = "xoxb-1111-2222-stubtoken"
APP_TOKEN = "xapp-1-A0STUB-3333-stubtoken"
CHANNEL = "C0KAFKA"
TEAM = {"id": "T0STUB", "domain": "stub"}


def slash_payload(text: str, user: str, *, channel: str = CHANNEL, response_url: str = "") -> dict[str, str]:
    return {
        "token": "legacy-verification-token", "team_id": TEAM["id"], "team_domain": TEAM["domain"],
        "channel_id": channel, "channel_name": "kafka-ops", "user_id": user, "user_name": user.lower(),
        "command": "/kafka", "text": text, "api_app_id": "A0STUB", "response_url": response_url,
        "trigger_id": f"{time.time():.0f}.1.trigger",
    }


def block_actions_payload(action_id: str, value: str, user: str, *, channel: str = CHANNEL, message_ts: str = "",
                          response_url: str = "") -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions", "team": TEAM, "user": {"id": user, "username": user.lower(), "team_id": TEAM["id"]},
        "api_app_id": "A0STUB", "token": "legacy-verification-token", "trigger_id": f"{time.time():.0f}.2.trigger",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel, "name": "kafka-ops"}, "message": {"ts": message_ts, "type": "message"},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value,
                     "text": {"type": "plain_text", "text": action_id}, "action_ts": f"{time.time():.6f}"}],
    }
    if response_url:
        payload["response_url"] = response_url
    return payload


def slash_body(payload: dict[str, str]) -> str:
    return urlencode(payload)


def block_actions_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }


def find_button(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any] | None:
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return dict(element)
    return None


def card_text(blocks: list[dict[str, Any]]) -> str:
    """Every text on a card, joined: for asserting what a card says."""
    parts: list[str] = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text", "")))
        for element in block.get("elements", []):
            if isinstance(element, dict) and isinstance(element.get("text"), str):
                parts.append(element["text"])
    return "\n".join(parts)
