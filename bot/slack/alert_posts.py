"""Alerts in Slack: one message per alert occurrence in the cluster's channel (``chat.postMessage``),
edited in place (``chat.update``) while it fires and when it resolves; Snooze buttons (30 min, 2 h,
1 day) and the alert's next action as a button.

The buttons carry only the alert id and the choice. A Snooze click is judged like the typed
``/kafka snooze``: the snooze is written to Redis (compare-and-set) before the ack, and the message
is edited to say who snoozed it. A next-action click runs the command it names as the clicker
typed it (``/kafka restart <cluster> --brokers <id>`` starts a run whose every step still waits for
an approver; ``/kafka lag <cluster> <group>`` answers privately), after Slack's confirm dialog.

Wiring: ``attach_slack_alerts(runtime, front)`` after ``build_front_end`` and before
``runtime.start()``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Coroutine
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Runtime
from bot.slack.acking import ACK_BUDGET_S, Background, in_foreground, within_budget
from bot.slack.app import SlackFrontEnd
from bot.slack.blocks import clip, escape, who
from handlers.alerting.alert_text import AlertView
from handlers.clusters import ManagedCluster
from handlers.commands.alert_values import alert_id as check_alert_id
from handlers.commands.alert_values import snooze_duration
from handlers.commands.service import CommandService
from handlers.commands.values import InvalidValue
from handlers.commands.verbs import SnoozeCommand
from handlers.replies import Reply
from runbooks.alerting.lifecycle import MessageRef, Phase
from runbooks.engine.models import Actor

log = logging.getLogger(__name__)

SNOOZE_ACTION = "kco_alert_snooze"  # one per choice: action ids must be unique within a block
COMMAND_ACTION = "kco_alert_command"
SNOOZE_ACTIONS = re.compile(rf"^{SNOOZE_ACTION}(-.+)?$")
COLORS = {Phase.FIRING: "🔴", Phase.PENDING: "⏳", Phase.RESOLVED: "✅"}
TEXT_LIMIT = 2900  # a section's text is capped at 3000 characters
FALLBACK_LIMIT = 3000


def alert_blocks(view: AlertView) -> list[dict[str, Any]]:
    body = "\n".join(escape(line) for line in view.lines)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(f"*{escape(view.headline)}*", TEXT_LIMIT)}},
    ]
    if body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(body, TEXT_LIMIT)}})
    elements = []
    for button in view.buttons:
        element: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": clip(button.label, 75)}}
        if button.action == "snooze":
            element["action_id"] = f"{SNOOZE_ACTION}-{button.value}"
            element["value"] = json.dumps({"alert": view.alert_id, "for": button.value}, separators=(",", ":"))
        else:
            element["action_id"] = COMMAND_ACTION
            element["value"] = clip(json.dumps({"alert": view.alert_id, "command": button.value},
                                               separators=(",", ":")), 2000)
            element["confirm"] = {
                "title": {"type": "plain_text", "text": "Run this command?"},
                "text": {"type": "mrkdwn", "text": clip(f"`{escape(button.value)}` as you. A runbook still asks "
                                                        "an approver before each step.", 300)},
                "confirm": {"type": "plain_text", "text": "Run it"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            }
        if button.style:
            element["style"] = button.style
        elements.append(element)
    if elements:
        blocks.append({"type": "actions", "block_id": f"alert-{view.alert_id}", "elements": elements})
    return blocks


class SlackAlertChannel:
    """The ``AlertChannel`` port on Slack's Web API. A cluster without a channel in the clusters file
    gets no messages (its alerts are logged and listed by /kafka alerts)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def post(self, cluster: ManagedCluster, view: AlertView) -> MessageRef:
        if not cluster.channel:
            log.warning("alert %s on %s not posted: the cluster has no channel in the clusters file: %s",
                        view.alert_id, cluster.name, view.headline)
            return MessageRef(channel=None, id=f"unposted:{view.alert_id}")
        response = await self._client.chat_postMessage(channel=cluster.channel, text=clip(view.text, FALLBACK_LIMIT),
                                                       blocks=alert_blocks(view), unfurl_links=False)
        return MessageRef(channel=str(response["channel"]), id=str(response["ts"]))

    async def update(self, cluster: ManagedCluster, ref: MessageRef, view: AlertView) -> None:
        if ref.channel is None:
            return
        await self._client.chat_update(channel=ref.channel, ts=ref.id, text=clip(view.text, FALLBACK_LIMIT),
                                       blocks=alert_blocks(view))


def _decode(raw: object) -> dict[str, str] | None:
    try:
        data = json.loads(str(raw))
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    try:
        check_alert_id(str(data.get("alert", "")))
    except InvalidValue:
        return None
    return data


class AlertButtons:
    """The Bolt listeners of the alert buttons."""

    def __init__(self, service: CommandService, background: Background, *, ack_budget_s: float = ACK_BUDGET_S) -> None:
        self._service = service
        self._background = background
        self._budget = ack_budget_s

    async def on_snooze(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                        respond: AsyncRespond) -> None:
        user = str((body.get("user") or {}).get("id", ""))
        data = _decode(action.get("value"))
        if data is None or not user or self._service.alerts is None:
            await ack()
            self._after_ack(_tell(respond, "This Snooze button could not be read; nothing was snoozed."))
            return
        try:
            length = snooze_duration(data.get("for", ""))  # normalised text, as /kafka snooze takes it
        except InvalidValue as exc:
            await ack()
            self._after_ack(_tell(respond, f"This Snooze button is malformed ({exc}); nothing was snoozed."))
            return
        channel = str((body.get("channel") or {}).get("id", "")) or None
        # Through the command service, so the cluster's channel and viewers rules apply as to /kafka snooze.
        command = SnoozeCommand(alert_id=data["alert"], duration=length)

        async def late(reply: Reply) -> None:
            await _tell(respond, reply.text)

        reply = await within_budget(self._service.handle(command, Actor(id=user), channel=channel),
                                    budget_s=self._budget, late=late, background=self._background,
                                    name=f"snooze {data['alert']}")
        await ack()
        if reply is not None:
            self._after_ack(_tell(respond, reply.text))

    async def on_command(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                         respond: AsyncRespond) -> None:
        await ack()  # the command's own reply follows through response_url, as for a slash command
        user = str((body.get("user") or {}).get("id", ""))
        data = _decode(action.get("value"))
        command = (data or {}).get("command", "")
        if not user or not command.startswith("/kafka "):
            self._after_ack(_tell(respond, "This button could not be read; nothing was run."))
            return
        channel = str((body.get("channel") or {}).get("id", "")) or None
        self._after_ack(self._run_command(command, Actor(id=user), channel, respond))

    async def _run_command(self, command: str, actor: Actor, channel: str | None, respond: AsyncRespond) -> None:
        reply = await self._service.handle_text(command, actor, channel=channel)
        await _tell(respond, reply.text if reply.ok else f"{command}: {reply.text}")

    def _after_ack(self, work: Coroutine[Any, Any, None]) -> None:
        """Bolt answers Slack when the listener returns (process_before_response), so what follows
        the ack runs in the background."""
        self._background.spawn(work, name="alert-button-answer")


async def _tell(respond: AsyncRespond, text: str) -> None:
    try:
        await respond(text=clip(text, 3000), response_type="ephemeral", replace_original=False)
    except Exception as exc:  # the decision stands; only the explanation is lost
        log.warning("could not answer an alert button privately (%s: %s)", type(exc).__name__, exc)


def attach_slack_alerts(runtime: Runtime, front: SlackFrontEnd) -> AlertButtons:
    """Alerts go to Slack, and the alert buttons are listened to, on this front end."""
    buttons = AlertButtons(runtime.service, front.background)
    front.app.action(SNOOZE_ACTIONS)(in_foreground(front.foreground, buttons.on_snooze))
    front.app.action(COMMAND_ACTION)(in_foreground(front.foreground, buttons.on_command))
    if runtime.alerting is not None:
        runtime.alerting.attach(SlackAlertChannel(front.client), mention=who)
    return buttons
