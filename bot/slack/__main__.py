"""``python -m bot.slack run [--http] [--port P]``: the same as ``kafka-chatops run``, for when the
main command line does not list ``run`` (it is registered there by ``bot.slack.run_command.register``)."""

from __future__ import annotations

import argparse
import sys

from bot.slack.run import cmd_run
from bot.slack.run_command import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kafka-chatops")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True), cmd_run)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
