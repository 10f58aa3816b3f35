"""The ``/kafka`` slash command: parse, refuse what Slack does with buttons, run the use case, ack.

The use case runs *before* the ack, so a run exists in Redis by the time Slack shows the user
anything; the ack carries the answer. Errors and refusals are ephemeral (only the person who
typed sees them). The run card itself is not the ack: it is a normal channel message the card
publisher posts (and then edits), because a slash command's response cannot be edited for hours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.foreground import Foreground
from bot.slack.acking import ACK_BUDGET_S, Background, within_budget
from bot.slack.blocks import clip
from bot.slack.cards import CardStore
from handlers.clusters import ManagedCluster
from handlers.commands.grammar import VERBS, ParseError, help_text, parse
from handlers.commands.service import CommandService
from handlers.commands.verbs import HelpCommand
from handlers.replies import Reply
from runbooks.engine.models import Actor

log = logging.getLogger(__name__)

COMMAND = "/kafka"
RESPONSE_LIMIT = 3900  # a slash command response's text; Slack truncates longer ones anyway
CONSOLE_ONLY = (
    "`{usage}` is for the console. In Slack, use the *{button}* button on the run's card: it carries "
    "the step and the approval request you were shown, so you approve exactly that."
)


def ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": clip(text, RESPONSE_LIMIT)}


def in_channel(text: str) -> dict[str, Any]:
    return {"response_type": "in_channel", "text": clip(text, RESPONSE_LIMIT)}


def card_place(run_id: str, card_channel: str | None, typed_in: str | None) -> str:
    """Where a run's card is, said to someone who typed a command in ``typed_in``."""
    if not card_channel:
        return f"not in Slack (its cluster has no channel): `/kafka run {run_id}` shows it"
    return "in this channel" if card_channel == typed_in else f"in <#{card_channel}>"


def as_code(text: str) -> str:
    """Plain text in a code block, so card and status layouts keep their columns in Slack."""
    return "```\n" + text.replace("```", "'''") + "\n```"


class SlashCommands:
    def __init__(self, service: CommandService, cards: CardStore, background: Background,
                 *, ack_budget_s: float = ACK_BUDGET_S, foreground: Foreground | None = None) -> None:
        self._service = service
        self._foreground = foreground or Foreground()
        self._cards = cards
        self._background = background
        self._budget = ack_budget_s

    @property
    def clusters(self) -> Mapping[str, ManagedCluster]:
        return self._service.clusters

    async def on_command(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        """The Bolt listener for ``/kafka``."""
        text = str(command.get("text") or "").strip()
        user, channel = str(command.get("user_id", "")), str(command.get("channel_id", "")) or None
        early, verb, parsed = self._answer_without_service(text)
        if early is not None:
            await ack(**early)
            return

        response_url = str(command.get("response_url") or "")

        async def late(reply: Reply) -> None:
            await respond(**self.reply_payload(text, verb, reply, typed_in=channel,
                                               card_channel=self._card_channel(reply)))
            await self._remember_requester(reply, user, response_url)

        try:
            reply = await within_budget(
                self._service.handle(parsed, Actor(id=user), channel=channel, text=text),
                budget_s=self._budget, late=late, background=self._background, name=f"{COMMAND} {text[:40]}")
        except Exception as exc:
            log.exception("/kafka %s failed", text[:80])
            await ack(**ephemeral(f"Something went wrong running `/kafka {text}`: {type(exc).__name__}: {exc}"))
            return
        if reply is None:
            await ack(**ephemeral(f"Working on `/kafka {text}`… the answer follows here."))
            return
        await ack(**self.reply_payload(text, verb, reply, typed_in=channel, card_channel=self._card_channel(reply)))
        self._background.spawn(self._remember_requester(reply, user, response_url), name=f"requester-{text[:40]}")

    @staticmethod
    def _answer_without_service(text: str) -> tuple[dict[str, Any] | None, str, object]:
        """Parse errors, help and console-only verbs are answered here, without touching Redis.
        Otherwise ``(None, verb, command)``: the command for the service."""
        try:
            command = parse(text)
        except ParseError as exc:
            return ephemeral(exc.render()), "", None
        if isinstance(command, HelpCommand):
            try:
                usage = help_text(command.verb, include_console_only=command.verb is not None)
                return ephemeral(usage), "help", command
            except ParseError as exc:
                return ephemeral(exc.render()), "help", command
        verb = str(getattr(command, "kind", ""))
        spec = VERBS[verb]
        if spec.console_only:
            return ephemeral(CONSOLE_ONLY.format(usage=spec.usage, button=spec.name.capitalize())), verb, command
        return None, verb, command

    async def _remember_requester(self, reply: Reply, user: str, response_url: str) -> None:
        """Keep the slash command's response_url with a new run's card (after the ack: it is not the
        run, and it is only needed if the card cannot be posted, to tell the requester why)."""
        if not (reply.ok and reply.run is not None and reply.run.requested_by == user and response_url):
            return
        await self._foreground.quiet_moment()  # nobody waits for this: acks first (bot.foreground)
        try:
            await self._cards.keep_response_url(reply.run.id, response_url)
        except Exception as exc:  # a convenience only; the card does not depend on it
            log.warning("response_url of %s not kept (%s)", reply.run.id, type(exc).__name__)

    def _card_channel(self, reply: Reply) -> str | None:
        """Where the card of the reply's run is: its cluster's channel, else where it was asked for
        (the same rule as ``CardPublisher``)."""
        if reply.run is None:
            return None
        cluster = self._service.clusters.get(reply.run.cluster)
        return (cluster.channel if cluster is not None else None) or reply.run.channel

    @staticmethod
    def reply_payload(text: str, verb: str, reply: Reply, *, typed_in: str | None = None,
                      card_channel: str | None = None) -> dict[str, Any]:
        if not reply.ok:
            return ephemeral(reply.text)
        run = reply.run
        if run is not None and verb in VERBS and VERBS[verb].mutating:
            # The card in the cluster's channel is the answer; the ack only says where it is.
            where = card_place(run.id, card_channel, typed_in)
            if verb == "restart":
                return ephemeral(f"Run `{run.id}` created: its card is {where}; each step waits for "
                                 f"an approver's click.")
            return ephemeral(f"`/kafka {text}`: done. The card of `{run.id}` ({where}) shows where it stands.")
        body = as_code(reply.text)
        return ephemeral(body) if reply.ephemeral else in_channel(body)
