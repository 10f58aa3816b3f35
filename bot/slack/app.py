"""The Bolt ``AsyncApp``: the Web API client it uses, its listeners, and the card publisher.

Built from a ``Runtime`` (the same use cases, worker and event bus the console uses), so Slack
is a second front end and nothing more; ``bot.slack.run`` puts it on a transport.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import store
from bot.app import Runtime
from bot.foreground import Foreground
from bot.slack.acking import ACK_BUDGET_S, Background, in_foreground
from bot.slack.actions import BUTTON_ACTIONS, CardButtons
from bot.slack.cards import CardPublisher, CardStore
from bot.slack.commands import COMMAND, SlashCommands
from bot.slack.groups import ApproverGroups
from bot.store.repository import RedisRunRepository

log = logging.getLogger(__name__)

SLACK_API_URL = "https://slack.com/api/"
# A 429 is retried after its Retry-After (plus jitter) this many times inside one call; past that
# the card publisher's own backoff takes over, so a rate-limit storm delays cards, never loses them.
RATE_LIMIT_RETRIES = 3
WEB_TIMEOUT_S = 10


def api_base_url(url: str | None) -> str:
    """The Web API base URL as the SDK wants it (with a trailing slash)."""
    base = (url or SLACK_API_URL).strip()
    return base if base.endswith("/") else base + "/"


def build_web_client(token: str, base_url: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(
        token=token, base_url=api_base_url(base_url), timeout=WEB_TIMEOUT_S,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1),
                        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


class _TokenFromEnvironmentNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that the client's token wins; it is the same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


BOLT_LOGGER = logging.getLogger("bot.slack.bolt")
BOLT_LOGGER.addFilter(_TokenFromEnvironmentNotice())


@dataclass
class SlackFrontEnd:
    app: AsyncApp
    client: AsyncWebClient
    cards: CardPublisher
    card_store: CardStore
    commands: SlashCommands
    buttons: CardButtons
    foreground: Foreground = field(default_factory=Foreground)
    background: Background = field(default_factory=Background)

    async def start(self) -> None:
        """Read the approver groups, and render whatever cards a previous process left behind
        (call after ``Runtime.start``)."""
        self.buttons.prefetch_groups()
        self.buttons.prefetch_groups(g for c in self.commands.clusters.values() for g in c.access.groups())
        await self.cards.catch_up()

    async def close(self) -> None:
        await self.background.wait()
        await self.cards.close()


def build_front_end(
    runtime: Runtime, client: AsyncWebClient, *, signing_secret: str | None, socket_mode: bool,
    card_interval_s: float = 1.0, ack_budget_s: float = ACK_BUDGET_S,
) -> SlackFrontEnd:
    """The Bolt app on ``runtime``; also subscribes the card publisher to the run events."""
    runs = RedisRunRepository(store.RunStore(runtime.redis))
    card_store = CardStore(runtime.redis)
    cards = CardPublisher(client=client, store=card_store, runs=runs, clusters=runtime.service.clusters,
                          min_interval_s=card_interval_s, foreground=runtime.foreground)
    runtime.bus.add_listener(cards.on_run_event)
    background = Background()
    commands = SlashCommands(runtime.service, card_store, background, ack_budget_s=ack_budget_s,
                             foreground=runtime.foreground)
    approver_groups = tuple(dict.fromkeys(
        g for cluster in runtime.service.clusters.values() for g in cluster.policy.approver_groups))
    # One cache of group members for clicks and commands: a command's requester and viewer groups
    # (runbooks.engine.access) are looked up the same way as a click's approver groups.
    groups = ApproverGroups(client)
    runtime.service.access.groups = groups
    buttons = CardButtons(actions=runtime.service.actions, runs=runs, groups=groups,
                          approver_groups=approver_groups, cards=cards, background=background,
                          ack_budget_s=ack_budget_s, undo=runtime.service.undo.undo)
    app = AsyncApp(
        client=client,
        # Socket Mode payloads come over the app's own authenticated WebSocket: nothing to sign.
        signing_secret=None if socket_mode else signing_secret,
        request_verification_enabled=not socket_mode,
        logger=BOLT_LOGGER,
        # Our listeners do their work before the ack (the run is in Redis first) and hand what
        # follows the ack to the background, so Bolt can answer Slack when the listener returns,
        # instead of running it in a task and polling for the ack every 10 ms.
        process_before_response=True,
    )
    app.command(COMMAND)(in_foreground(runtime.foreground, commands.on_command))
    for action_id in BUTTON_ACTIONS:
        app.action(action_id)(in_foreground(runtime.foreground, buttons.on_click))
    return SlackFrontEnd(app=app, client=client, cards=cards, card_store=card_store, commands=commands,
                         buttons=buttons, foreground=runtime.foreground, background=background)

