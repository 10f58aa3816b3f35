"""``python -m bot.configmodel``: write (or check) runbooks/rules/config_model/kafka-<version>.json from the jars."""

from __future__ import annotations

import argparse
import sys

from bot.configmodel import ModelError, model_path, stale, write
from bot.sandbox.jars import KNOWN_GOOD_VERSIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.configmodel",
                                     description="Generate Kafka's broker config model from the Kafka jars.")
    parser.add_argument("--kafka-version", action="append", dest="versions", metavar="VERSION",
                        help=f"a Kafka version whose jars are fetched (repeatable; default: "
                             f"{', '.join(KNOWN_GOOD_VERSIONS)})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a committed model differs from what the jars say")
    args = parser.parse_args(argv)
    versions = args.versions or list(KNOWN_GOOD_VERSIONS)
    try:
        if args.check:
            outdated = [v for v in versions if stale(v)]
            for version in outdated:
                print(f"{model_path(version)} is not what Kafka {version}'s jars say: run `make config-model`",
                      file=sys.stderr)
            return 1 if outdated else 0
        for version in versions:
            print(f"wrote {write(version)}")
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
