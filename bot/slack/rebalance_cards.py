"""Rebalance cards in Slack: one message per KafkaRebalance in the cluster's channel
(``chat.postMessage``), edited in place (``chat.update``) as the resource moves; Approve / Refresh /
Stop buttons, only those Strimzi acts on in the state shown (``runbooks.rules.rebalance``).

A button carries the card id, the action and the state it was drawn for. A click is judged like a
run approval: the clicker's user groups are looked up among the configured approver groups, the
use case (``handlers.rebalance_cards``) reads the resource, checks approver, state and N-of-M,
writes the annotation with a check-and-write of that state, and records who pressed what, all
before the ack (within the ack budget; later, the answer follows). A refusal is answered privately.

Wiring: ``attach_rebalance_cards(runtime, front)`` after ``build_front_end``.
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
from bot.slack.groups import ApproverGroups
from handlers.rebalance_cards import RebalanceCards
from handlers.replies import Reply
from runbooks.engine.models import Actor
from runbooks.rules.rebalance import RebalanceAction, RebalanceState
from runbooks.rules.rebalance_card import CardMessage, RebalanceCardView

log = logging.getLogger(__name__)

ACTION_PREFIX = "kco_rebalance_"  # one action id per button: kco_rebalance_approve, _refresh, _stop
REBALANCE_ACTIONS = re.compile(rf"^{ACTION_PREFIX}({'|'.join(a.value for a in RebalanceAction)})$")
TEXT_LIMIT = 2900
FALLBACK_LIMIT = 3000
MALFORMED = "This rebalance button could not be read; nothing was changed."
# The mentions the card's own lines hold (``who``): kept, everything else escaped.
_MENTION = re.compile(r"(<@[UW][A-Z0-9]+>|<!subteam\^S[A-Z0-9]+>)")


def _escape_line(line: str) -> str:
    return "".join(part if _MENTION.fullmatch(part) else escape(part) for part in _MENTION.split(line))


def rebalance_blocks(card_id: str, view: RebalanceCardView) -> list[dict[str, Any]]:
    body = "\n".join(_escape_line(line) for line in view.lines)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(f"*{escape(view.headline)}*", TEXT_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(body, TEXT_LIMIT)}},
    ]
    if view.buttons and view.state is not None:
        elements = []
        for button in view.buttons:
            element: dict[str, Any] = {
                "type": "button", "text": {"type": "plain_text", "text": button.label},
                "action_id": f"{ACTION_PREFIX}{button.action.value}",
                "value": json.dumps({"card": card_id, "state": view.state.value}, separators=(",", ":")),
            }
            if button.style:
                element["style"] = button.style
            if button.action is RebalanceAction.STOP:
                element["confirm"] = {
                    "title": {"type": "plain_text", "text": "Stop this rebalance?"},
                    "text": {"type": "mrkdwn", "text": "Cruise Control finishes the batch in flight and cancels "
                                                       "the rest: the cluster stays partly rebalanced."},
                    "confirm": {"type": "plain_text", "text": "Stop it"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                }
            elements.append(element)
        blocks.append({"type": "actions", "block_id": "rebalance", "elements": elements})
    return blocks


class SlackRebalanceChannel:
    """The ``RebalanceChannel`` port on Slack's Web API. A cluster without a channel gets no card
    (its rebalances are logged)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def post(self, channel: str | None, card_id: str, view: RebalanceCardView) -> CardMessage:
        if not channel:
            log.warning("rebalance card %s not posted: the cluster has no channel in the clusters file: %s",
                        card_id, view.headline)
            return CardMessage(channel=None, id=f"unposted:{card_id}")
        response = await self._client.chat_postMessage(channel=channel, text=clip(view.text, FALLBACK_LIMIT),
                                                       blocks=rebalance_blocks(card_id, view), unfurl_links=False)
        return CardMessage(channel=str(response["channel"]), id=str(response["ts"]))

    async def update(self, ref: CardMessage, card_id: str, view: RebalanceCardView) -> None:
        if ref.channel is None:
            return
        await self._client.chat_update(channel=ref.channel, ts=ref.id, text=clip(view.text, FALLBACK_LIMIT),
                                       blocks=rebalance_blocks(card_id, view))


def decode(action_id: str, raw: object) -> tuple[str, RebalanceAction, RebalanceState] | None:
    match = REBALANCE_ACTIONS.match(action_id)
    try:
        data = json.loads(str(raw))
    except ValueError:
        return None
    if match is None or not isinstance(data, dict):
        return None
    card, state = data.get("card"), data.get("state")
    if not isinstance(card, str) or not card or state not in {s.value for s in RebalanceState}:
        return None
    return card, RebalanceAction(match.group(1)), RebalanceState(state)


class RebalanceButtons:
    """The Bolt listener of the rebalance card buttons."""

    def __init__(self, cards: RebalanceCards, groups: ApproverGroups, background: Background, *,
                 ack_budget_s: float = ACK_BUDGET_S) -> None:
        self._cards = cards
        self._groups = groups
        self._background = background
        self._budget = ack_budget_s
        self._approver_groups = tuple(dict.fromkeys(
            g for cluster in cards.clusters.values() for g in cluster.policy.approver_groups))

    def prefetch_groups(self) -> None:
        self._groups.prefetch(self._approver_groups)

    async def on_click(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                       respond: AsyncRespond) -> None:
        user = str((body.get("user") or {}).get("id", ""))
        decoded = decode(str(action.get("action_id", "")), action.get("value"))
        if decoded is None or not user:
            await ack()
            self._after_ack(_tell(respond, MALFORMED))
            return
        card, pressed, shown = decoded

        async def answer(reply: Reply) -> None:
            await _tell(respond, reply.text)
            await self._cards.redraw(card)  # after the ack: a slow chat.update never holds it

        try:
            reply = await within_budget(self.press(card, pressed, shown, user), budget_s=self._budget, late=answer,
                                        background=self._background, name=f"rebalance {pressed.value} {card}")
        except Exception as exc:
            log.exception("%s on rebalance card %s by %s failed", pressed.value, card, user)
            await ack()
            self._after_ack(_tell(respond, f"That click failed: {type(exc).__name__}: {exc}. Nothing was decided; "
                                           "try again."))
            return
        await ack()
        if reply is not None:
            self._after_ack(answer(reply))

    async def press(self, card: str, action: RebalanceAction, shown: RebalanceState, user: str) -> Reply:
        actor = Actor(id=user, groups=await self._groups.groups_of(user, self._approver_groups))
        return await self._cards.press(card, action, shown, actor)

    def _after_ack(self, work: Coroutine[Any, Any, None]) -> None:
        self._background.spawn(work, name="rebalance-button-answer")


async def _tell(respond: AsyncRespond, text: str) -> None:
    """Every press is answered privately: what was set, or why nothing was."""
    try:
        await respond(text=clip(text, 3000), response_type="ephemeral", replace_original=False)
    except Exception as exc:  # the decision stands; only the explanation is lost
        log.warning("could not answer a rebalance button privately (%s: %s)", type(exc).__name__, exc)


def attach_rebalance_cards(runtime: Runtime, front: SlackFrontEnd) -> RebalanceButtons | None:
    """Rebalance cards go to the clusters' Slack channels, and their buttons are listened to."""
    if runtime.rebalances is None:
        return None
    cards = runtime.rebalances.cards
    cards.channel = SlackRebalanceChannel(front.client)
    cards.mention = who
    buttons = RebalanceButtons(cards, ApproverGroups(front.client), front.background)
    buttons.prefetch_groups()
    front.app.action(REBALANCE_ACTIONS)(in_foreground(front.foreground, buttons.on_click))
    return buttons
