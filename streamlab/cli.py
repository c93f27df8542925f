"""``streamlab`` command line: one subcommand per module in ``streamlab.commands``.

Every error the user can cause ends as one clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from streamlab.commands import COMMANDS
from streamlab.errors import StreamlabError
from streamlab.extras import MissingExtraError, missing_extra
from streamlab.observe.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamlab", description="Real-time video pipeline lab: RTSP in, analysis, WebRTC out."
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("STREAMING_LOG_LEVEL", "warning"),
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr (default: warning; env STREAMING_LOG_LEVEL)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"streamlab.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"streamlab.commands.{name}":
                continue  # not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level, os.environ.get("STREAMING_LOG_FORMAT", "auto"))
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        return 130
    except (StreamlabError, OSError) as exc:
        print(f"streamlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        extra = "bench" if args.command in ("bench", "report") else None
        error = missing_extra(exc, f"streamlab {args.command}", extra)
        if not isinstance(error, MissingExtraError):
            raise
        print(f"streamlab {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
