"""streamlab's ``bandwidth`` against the usual aiortc restreamer behind the kernel's bottleneck.

Each round runs the 720p test camera and one server (streamlab ``quality=bandwidth``, or the
restreamer) in a network namespace, and one viewer (aiortc, or Debian's Chromium) in another,
through ``tbf`` at each rate (200 ms drop-tail queue), and prints what the viewer saw:
frames per second after the first 3 s, W3C freezes and their total time, harmonic frame
rate, the size at the end, and when streamlab first reached each size. Needs root::

    .venv/bin/python benchmarks/bottleneck_probe.py --rates 300k,800k,2M --seconds 20 \
        --out reports/bottleneck.json

A step schedule (``--schedule 800k@0,2M@10,600k@20``) changes the capacity during a run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rows import write_rows  # benchmarks/rows.py

from streamlab.experiments.behind import watch_behind
from streamlab.experiments.bottleneck import KernelBottleneck, available


def first_at(seconds: list[dict[str, Any]]) -> dict[str, int]:
    """The first second each size was shown."""
    seen: dict[str, int] = {}
    for record in seconds:
        size = record.get("size")
        name = "x".join(map(str, size)) if isinstance(size, list) else str(size)
        seen.setdefault(name, record["t"])
    return seen


def schedule_of(text: str) -> list[tuple[float, str]]:
    steps = []
    for part in filter(None, text.split(",")):
        rate, _, at = part.partition("@")
        steps.append((float(at.rstrip("s") or 0), rate))
    return steps


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="300k,800k,2M")
    parser.add_argument("--viewers", default="aiortc,chromium")
    parser.add_argument("--servers", default="streamlab,restreamer")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--queue-ms", type=float, default=200.0)
    parser.add_argument("--schedule", default="", help="e.g. 800k@0,2M@10,600k@20")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if available() is not None:
        print(f"bottleneck_probe: {available()}", file=sys.stderr)
        return 2
    rows = []
    schedule = schedule_of(args.schedule)
    rates = [schedule[0][1]] if schedule else args.rates.split(",")
    for rate in rates:
        for viewer in args.viewers.split(","):
            for server in args.servers.split(","):
                with KernelBottleneck(rate, args.queue_ms) as bottleneck:
                    watched = watch_behind(bottleneck, server=server, viewer=viewer,
                                           settings={"quality": "bandwidth"},
                                           seconds=args.seconds, schedule=schedule)  # fmt: skip
                smooth = watched.smoothness
                last = watched.seconds[-1] if watched.seconds else {}
                row = {"rate": args.schedule or rate, "viewer": viewer, "server": server,
                       "fps": round(watched.fps(3), 1),
                       "freezes": smooth.get("freeze_count"),
                       "frozen_ms": smooth.get("freeze_total_ms"),
                       "harmonic_fps": smooth.get("harmonic_fps"),
                       "size_at_end": last.get("size"), "first_shown_s": first_at(watched.seconds),
                       "queue_dropped": watched.queue.get("dropped"),
                       "seconds": watched.seconds}  # fmt: skip
                rows.append(row)
                print(f"| {row['rate']} | {viewer} | {server} | {row['fps']} | {row['freezes']} "
                      f"| {row['frozen_ms']} | {row['harmonic_fps']} | {row['size_at_end']} "
                      f"| {row['first_shown_s']} | {row['queue_dropped']} |", flush=True)  # fmt: skip
    write_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
