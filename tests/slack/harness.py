"""The Slack front end in the test's own process: a fake cluster, real Redis, the stub Web API,
and requests dispatched into the real Bolt app with real signatures (bolt-python's scenario-test
pattern: ``AsyncBoltRequest`` + ``app.async_dispatch``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.app import Runtime
from bot.slack.app import SlackFrontEnd, build_front_end, build_web_client
from bot.slack.blocks import APPROVE_ACTION
from bot.store import RunStore
from bot.store.repository import RedisRunRepository
from handlers.clusters import ManagedCluster
from runbooks.engine.models import Run, RunState
from tests.fakes.cluster import FakeCluster
from tests.fixtures.fake_runtime import close_runtime, fake_runtime
from tests.fixtures.waiting import wait_for
from tests.slack.payloads import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    block_actions_body,
    block_actions_payload,
    find_button,
    signed_headers,
    slash_body,
    slash_payload,
)
from tests.slack.stub_web_api import Message, StubWebApi


@dataclass
class InProcessBot:
    runtime: Runtime
    front: SlackFrontEnd
    api: StubWebApi
    runs: RedisRunRepository

    async def command(self, text: str, user: str, *, response_url: str = "", channel: str = CHANNEL) -> BoltResponse:
        body = slash_body(slash_payload(text, user, channel=channel,
                                        response_url=response_url or self.api.response_url("cmd")))
        return await self.front.app.async_dispatch(AsyncBoltRequest(body=body, headers=signed_headers(body)))

    async def click(self, action_id: str, value: str, user: str, *, message_ts: str = "",
                    wait_for_answer: bool = True) -> BoltResponse:
        """A signed click, dispatched as Slack's request would be. The clicker's private answer is
        sent after the ack, in the background; by default this waits for it too."""
        payload = block_actions_payload(action_id, value, user, message_ts=message_ts,
                                        response_url=self.api.response_url(f"click-{user}"))
        body = block_actions_body(payload)
        response = await self.front.app.async_dispatch(AsyncBoltRequest(body=body, headers=signed_headers(body)))
        if wait_for_answer:
            await self.front.background.wait()
        return response

    async def run(self, run_id: str) -> Run:
        loaded = await self.runs.load(run_id)
        assert loaded is not None, f"no run {run_id} in Redis"
        return loaded[0]

    async def wait_state(self, run_id: str, *states: RunState, timeout: float = 20.0) -> Run:  # noqa: ASYNC109
        async def reached() -> Run | None:
            run = await self.run(run_id)
            return run if run.state in states else None
        return await wait_for(reached, timeout=timeout, message=f"run {run_id} to be {states}")

    async def card(self, run_id: str, *, timeout: float = 10.0) -> Message:  # noqa: ASYNC109
        """The run's card as the stub holds it (its latest chat.update)."""
        async def posted() -> Message | None:
            record = await self.front.card_store.get(run_id)
            return self.api.message(record.channel, record.ts) if record.ts else None
        return await wait_for(posted, timeout=timeout, message=f"the card of {run_id}")

    async def card_showing(self, run_id: str, *states: RunState, timeout: float = 20.0) -> Message:  # noqa: ASYNC109
        """Wait until the card shows the run in one of ``states`` (rendered from Redis, then posted)."""
        labels = [f"*{s.value.replace('_', ' ')}*" for s in states]

        async def shows() -> Message | None:
            card = await self.card(run_id)
            context = card.blocks[1]["elements"][0]["text"] if len(card.blocks) > 1 else ""
            return card if any(label in context for label in labels) else None
        return await wait_for(shows, timeout=timeout, message=f"the card of {run_id} to show {states}")

    async def approve_button(self, run_id: str, step_id: str) -> str:
        """The Approve button's value once the card shows ``step_id`` waiting."""
        async def button() -> str | None:
            card = await self.card(run_id)
            found = find_button(card.blocks, APPROVE_ACTION)
            return str(found["value"]) if found and f'"step":"{step_id}"' in found["value"] else None
        return await wait_for(button, timeout=20, message=f"an Approve button for {step_id} on {run_id}")


@contextlib.asynccontextmanager
async def in_process_bot(
    redis_url: str, api: StubWebApi, clusters: dict[str, ManagedCluster], fake: FakeCluster, *,
    owner: str = "replica-a", card_interval_s: float = 1.0, ack_budget_s: float = 2.2, worker: bool = True,
    advisory_recheck_s: float = 15.0,
) -> AsyncIterator[InProcessBot]:
    runtime = await fake_runtime(redis_url, clusters, fake, owner=owner, advisory_recheck_s=advisory_recheck_s)
    front = build_front_end(runtime, build_web_client(BOT_TOKEN, api.url), signing_secret=SIGNING_SECRET,
                            socket_mode=False, card_interval_s=card_interval_s, ack_budget_s=ack_budget_s)
    if worker:
        await runtime.start()
    else:
        await runtime.bus.start()
    await front.start()
    try:
        yield InProcessBot(runtime, front, api, RedisRunRepository(RunStore(runtime.redis)))
    finally:
        await front.close()
        await close_runtime(runtime)


def response_json(response: BoltResponse) -> dict[str, Any]:
    import json

    return dict(json.loads(response.body)) if response.body else {}


__all__ = ["CHANNEL", "InProcessBot", "in_process_bot", "response_json"]
