"""Button clicks on run cards: Approve, Abort (after Slack's confirm dialog), Retry and Undo.

A click is judged like any approval: the run is loaded from Redis, the clicker's user groups are
looked up for the run's approver groups, and the engine decides (approvers, four-eyes, current
nonce, plan hash) with a compare-and-set write, so a double click approves once and a click on a
card whose run another replica drives works the same. The decision is written before the ack;
a refusal is answered privately (ephemeral) with the engine's reason, and the engine has
already written it to the audit stream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.acking import ACK_BUDGET_S, Background, within_budget
from bot.slack.blocks import ABORT_ACTION, APPROVE_ACTION, RETRY_ACTION, UNDO_ACTION, ButtonValue, clip
from bot.slack.cards import CardPublisher
from bot.slack.groups import ApproverGroups
from bot.store.repository import RedisRunRepository
from handlers.replies import Reply
from handlers.runs.actions import RunActions
from runbooks.engine.approvals import check_button_step
from runbooks.engine.models import Actor

log = logging.getLogger(__name__)

BUTTON_ACTIONS = (APPROVE_ACTION, ABORT_ACTION, RETRY_ACTION, UNDO_ACTION)
# ``handlers.commands.undo.UndoRequests.undo``: (run id, clicker, channel of the click) -> the undo run, or why not.
UndoFn = Callable[..., Awaitable[Reply]]
MALFORMED = "This button is not one of this bot's run-card buttons (its value could not be read); nothing was done."


class CardButtons:
    def __init__(self, *, actions: RunActions, runs: RedisRunRepository, groups: ApproverGroups,
                 approver_groups: tuple[str, ...], cards: CardPublisher, background: Background,
                 ack_budget_s: float = ACK_BUDGET_S, undo: UndoFn | None = None) -> None:
        self._actions = actions
        self._undo = undo
        self._runs = runs
        self._groups = groups
        # Every approver group in the configuration. A click's groups are looked up among these
        # (cached), not among the run's own, so judging a click needs no extra read of the run;
        # the engine then checks them against the policy snapshotted in the run. A group a run
        # names that is no longer configured is never looked up: its members are refused (fail closed).
        self._approver_groups = approver_groups
        self._cards = cards
        self._background = background
        self._budget = ack_budget_s

    def prefetch_groups(self, groups: Iterable[str] | None = None) -> None:
        """Read ``groups`` (default: every approver group) in the background, before the first click."""
        self._groups.prefetch(self._approver_groups if groups is None else groups)

    async def on_click(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond,
                       client: AsyncWebClient) -> None:
        """The Bolt listener for every card button."""
        user = str((body.get("user") or {}).get("id", ""))
        value = ButtonValue.decode(action.get("value"))
        action_id = str(action.get("action_id", ""))
        if value is None or not user:
            await ack()
            self._background.spawn(self._tell(respond, client, body, user, MALFORMED), name="malformed-click")
            return

        async def late(reply: Reply) -> None:
            await self._answer(reply, value, respond, client, body, user)

        try:
            reply = await within_budget(
                self.click(action_id, value, user), budget_s=self._budget, late=late, background=self._background,
                name=f"{action_id} {value.run_id}")
        except Exception as exc:
            log.exception("%s on %s by %s failed", action_id, value.run_id, user)
            await ack()
            failed = f"That click failed: {type(exc).__name__}: {exc}. Nothing was decided; try again."
            self._background.spawn(self._tell(respond, client, body, user, failed), name=f"failed-{action_id}")
            return
        await ack()
        # After the ack, in the background: the listener returns at once, and Bolt answers Slack then.
        if reply is not None:
            self._background.spawn(self._answer(reply, value, respond, client, body, user),
                                   name=f"answer-{action_id}-{value.run_id}")

    async def click(self, action_id: str, value: ButtonValue, user: str) -> Reply:
        """Decide one click; the returned reply says what happened (``ok`` False: refused)."""
        actor = Actor(id=user, groups=await self._groups.groups_of(user, self._approver_groups))
        if action_id == APPROVE_ACTION:
            return await self._actions.approve(value.run_id, actor, step_id=value.step_id, nonce=value.nonce,
                                               plan_hash=value.plan_hash)
        if action_id == ABORT_ACTION:
            return await self._actions.abort(value.run_id, actor)
        if action_id == RETRY_ACTION:
            return await self._actions.resume(value.run_id, actor, step_id=value.step_id)
        if action_id == UNDO_ACTION and self._undo is not None:
            stale = await self._stale_undo(value)
            return stale if stale is not None else await self._undo(value.run_id, actor)
        return Reply.error(f"Unknown button {action_id!r}.")

    async def _stale_undo(self, value: ButtonValue) -> Reply | None:
        """Undo is offered for the step a run paused on: the engine's rule for a button of another
        step (``check_button_step``) refuses it once the run is paused elsewhere."""
        loaded = await self._runs.load(value.run_id)
        refusal = check_button_step(loaded[0], value.step_id, button="Undo") if loaded is not None else None
        return Reply.error(refusal.message) if refusal is not None else None

    async def _answer(self, reply: Reply, value: ButtonValue, respond: AsyncRespond, client: AsyncWebClient,
                      body: dict[str, Any], user: str) -> None:
        self._cards.request(value.run_id)  # render now, whatever the bus does; a refused click changes nothing
        if reply.run is not None and reply.run.id != value.run_id:
            self._cards.request(reply.run.id)  # the run the click created (an undo): its card too
        if not reply.ok:
            await self._tell(respond, client, body, user, reply.text)

    @staticmethod
    async def _tell(respond: AsyncRespond, client: AsyncWebClient, body: dict[str, Any], user: str, text: str) -> None:
        """An ephemeral answer to the clicker only: by response_url when there is one, else postEphemeral."""
        text = clip(text, 3000)
        try:
            if body.get("response_url"):
                await respond(text=text, response_type="ephemeral", replace_original=False)
                return
            channel = str((body.get("channel") or {}).get("id", ""))
            if channel and user:
                await client.chat_postEphemeral(channel=channel, user=user, text=text)
        except Exception as exc:  # the decision stands and is audited; only the explanation is lost
            log.warning("could not answer %s privately (%s: %s)", user, type(exc).__name__, exc)
