"""A request server for the ack benchmark: the bench's own app served by the code the bot's request
servers run (``kafka-chatops run --http --processes N``).

``python -m tests.bench.slack_request_server ours|bare <redis_url> <api_url> <port> <clusters>``:
``ours`` is the front end on the fake cluster (clusters ``c0`` to ``c<clusters - 1>``, as in
``tests.bench.slack_ack``), without the engine worker, as the bot's request servers run; ``bare``
is the bare Bolt app that only acks.
"""

from __future__ import annotations

import asyncio
import gc
import sys

from bot.slack.app import build_web_client
from bot.slack.processes import serve_until_stopped
from bot.slack.run import SlackSettings, serve_requests_only, slack_transport
from tests.bench.slack_ack import bare_app
from tests.fakes.cluster import FakeCluster, managed
from tests.fixtures.fake_runtime import fake_runtime
from tests.slack.payloads import BOT_TOKEN, SIGNING_SECRET

HOST = "127.0.0.1"


async def main(kind: str, redis_url: str, api_url: str, port: int, clusters: int) -> None:
    slack = SlackSettings(bot_token=BOT_TOKEN, app_token=None, signing_secret=SIGNING_SECRET, api_url=api_url,
                          http=True)
    if kind == "bare":
        gc.freeze()
        client = build_web_client(BOT_TOKEN, api_url)
        await serve_until_stopped(slack_transport(bare_app(api_url), client, slack, host=HOST, port=port, shared=True))
        return
    names = [f"c{i}" for i in range(clusters)]
    runtime = await fake_runtime(redis_url, {name: managed(name) for name in names}, FakeCluster())
    await serve_requests_only(runtime, slack, host=HOST, port=port)


if __name__ == "__main__":
    kind, redis_url, api_url, port, clusters = sys.argv[1:6]
    asyncio.run(main(kind, redis_url, api_url, int(port), int(clusters)))
