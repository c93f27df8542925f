"""``streamlab probe URL``: read a source and report what was measured."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from streamlab.config import load_config


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("probe", help="read a source and report fps, size, gaps, drops")
    parser.add_argument("url", help="rtsp://..., synthetic://... or a video file")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--frames", type=int, help="stop after N frames (default 100)")
    limit.add_argument("--duration", type=float, help="stop after S seconds")
    parser.add_argument("--buffering", default="latest", help="buffering strategy spec")
    parser.add_argument("--analyze", help="detectors to run, e.g. people,motion")
    parser.add_argument("--skipping", help="skipping strategy spec, e.g. every_nth:3")
    parser.add_argument("--retry", action="store_true", help="keep reconnecting until time is up")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamlab.probe import probe

    analyze = [n.strip() for n in args.analyze.split(",") if n.strip()] if args.analyze else None
    config = load_config(buffering=args.buffering, skipping=args.skipping, analyze=analyze)
    report = asyncio.run(
        probe(
            args.url,
            frames=args.frames,
            duration=args.duration,
            buffering=config.buffering,
            analyze=analyze,
            skipping=args.skipping,
            config=config,
            retry=args.retry,
        )
    )
    data = report.to_dict()
    if args.json:
        print(json.dumps(data))
    else:
        for key, value in data.items():
            print(f"{key:>14}: {value}")
    return 0
