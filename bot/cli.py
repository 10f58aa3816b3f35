"""The ``kafka-chatops`` command line: ``run``, ``console``, ``demo`` and ``sandbox ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka-chatops",
        description="Operate Strimzi-run Kafka clusters from Slack, with approved, durable runbooks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from bot.cli_bot import register as register_bot
    from bot.sandbox.cli import register as register_sandbox
    from bot.slack.run_command import register as register_slack

    register_bot(commands)
    register_slack(commands, run_slack)
    register_sandbox(commands)
    return parser


def run_slack(args: argparse.Namespace) -> int:
    from bot.slack.run import cmd_run  # the Slack SDKs and aiohttp: loaded by the one command that uses them

    return cmd_run(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
