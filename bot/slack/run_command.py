"""The ``run`` subcommand's command line, apart from ``bot.slack.run`` so that registering it costs
nothing: every ``kafka-chatops`` process (``console``, ``sandbox``) builds the whole parser, and
only ``run`` needs the Slack SDKs and aiohttp that ``bot.slack.run`` imports (about 15 MB of
resident memory a console would otherwise hold for nothing). The caller passes the command's
handler (``bot.slack.run.cmd_run``, or a function importing it when called)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

DEFAULT_PORT = 3000


def register(commands: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    run = commands.add_parser(
        "run", help="the bot: Slack (Socket Mode, or HTTP with --http), the engine worker and the run cards",
        description="Socket Mode when SLACK_APP_TOKEN is set; HTTP on --port at /slack/events with --http "
                    "and SLACK_SIGNING_SECRET. Also needs SLACK_BOT_TOKEN, REDIS_URL, KAFKA_CHATOPS_CONFIG "
                    "and KUBECONFIG (or in-cluster config).")
    run.add_argument("--http", action="store_true", help="serve Slack's HTTP requests instead of Socket Mode")
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    run.add_argument("--host", default="0.0.0.0", help="HTTP address to bind (default 0.0.0.0)")
    # Retired (docs/design.md); still parsed, so that a command line that has it is refused with what
    # to do instead, not with argparse's bare "unrecognized arguments".
    run.add_argument("--processes", nargs="?", const="", default=None, help=argparse.SUPPRESS)
    run.set_defaults(handler=handler)

