"""A request server for the ack benchmark: the bench's own app served as the bot's request servers
serve theirs (``kafka-chatops run --http --processes N``).

``python -m tests.bench.slack_request_server ours|bare <redis_url> <api_url> <port> <clusters>``:
``ours`` is the front end on the fake cluster (clusters ``c0`` to ``c<clusters - 1>``, as in
``tests.bench.slack_ack``), without the engine worker, as the bot's request servers run; ``bare``
is the bare Bolt app that only acks.
"""

from __future__ import annotations

import asyncio
import gc
import sys

from bot.slack.app import build_front_end, build_web_client
from bot.slack.processes import serve_until_stopped
from bot.slack.run import SlackSettings, slack_transport
from tests.bench.slack_ack import bare_app
from tests.slack.fake_cluster import FakeCluster, fake_runtime, managed
from tests.slack.payloads import BOT_TOKEN, SIGNING_SECRET

HOST = "127.0.0.1"


async def main(kind: str, redis_url: str, api_url: str, port: int, clusters: int) -> None:
    client = build_web_client(BOT_TOKEN, api_url)
    slack = SlackSettings(bot_token=BOT_TOKEN, app_token=None, signing_secret=SIGNING_SECRET, api_url=api_url,
                          http=True)
    if kind == "bare":
        gc.freeze()
        await serve_until_stopped(slack_transport(bare_app(api_url), client, slack, host=HOST, port=port, shared=True))
        return
    names = [f"c{i}" for i in range(clusters)]
    runtime = await fake_runtime(redis_url, {name: managed(name) for name in names}, FakeCluster())
    front = build_front_end(runtime, client, signing_secret=SIGNING_SECRET, socket_mode=False)
    front.buttons.prefetch_groups()
    gc.freeze()
    try:
        await serve_until_stopped(slack_transport(front.app, client, slack, host=HOST, port=port, shared=True))
    finally:
        await front.close()
        await runtime.close()


if __name__ == "__main__":
    kind, redis_url, api_url, port, clusters = sys.argv[1:6]
    asyncio.run(main(kind, redis_url, api_url, int(port), int(clusters)))
