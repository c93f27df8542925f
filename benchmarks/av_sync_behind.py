"""A/V sync behind the kernel's bottleneck: streamlab against the usual aiortc restreamer.

Each round runs the test camera (640x360@30 with ``wave=sync``: a marked frame a second
and a click at its instant, as PCMA or AAC) and one server (streamlab ``quality=bandwidth``
with ``lip_sync`` on or off, or the restreamer) in a network namespace, and Debian's
Chromium in another, through ``tbf`` (200 ms drop-tail queue), and prints the A/V offset
the page measured once settled (clicks after ``--settle`` seconds; audio minus video,
positive = sound late), with the picture's frame rate and W3C freezes. Needs root::

    .venv/bin/python benchmarks/av_sync_behind.py --rates 2M,800k --seconds 36 \\
        --out reports/av_sync_behind.json
"""

from __future__ import annotations

import argparse
import sys
from types import SimpleNamespace

from rows import write_rows  # benchmarks/rows.py

from streamlab.experiments import av_sync
from streamlab.experiments.behind import watch_behind
from streamlab.experiments.bottleneck import KernelBottleneck, available

SERVERS = {
    "streamlab": ("streamlab", {"quality": "bandwidth"}),
    "streamlab-no-lip-sync": ("streamlab", {"quality": "bandwidth", "lip_sync": False}),
    "restreamer": ("restreamer", {}),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="2M,800k")
    parser.add_argument("--audio", default="pcma,aac")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--seconds", type=float, default=36.0)
    parser.add_argument("--settle", type=float, default=18.0, help="seconds before pairs count")
    parser.add_argument("--queue-ms", type=float, default=200.0)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if available() is not None:
        print(f"av_sync_behind: {available()}", file=sys.stderr)
        return 2
    rows = []
    print("| link | camera audio | server | A/V ms (p5..p95) | pairs | detectable % | fps | "
          "freezes |")  # fmt: skip
    for rate in args.rates.split(","):
        for audio in args.audio.split(","):
            for name in args.servers.split(","):
                server, settings = SERVERS[name]
                with KernelBottleneck(rate, args.queue_ms) as bottleneck:
                    watched = watch_behind(bottleneck, server=server, settings=settings,
                                           viewer="chromium", seconds=args.seconds,
                                           camera_size="640x360",
                                           camera_options={"audio": audio, "wave": "sync"})  # fmt: skip
                since = watched.started_ms + args.settle * 1000
                log = SimpleNamespace(clicks=[c for c in watched.clicks if c >= since],
                                      marks=[m for m in watched.marks if m >= since - 500])  # fmt: skip
                figures = av_sync.figures([log])
                smooth = watched.smoothness
                row = {"rate": rate, "audio": audio, "server": name, **figures,
                       "fps": round(watched.fps(3), 1), "freezes": smooth.get("freeze_count"),
                       "queue_dropped": watched.queue.get("dropped")}  # fmt: skip
                rows.append(row)
                print(f"| {rate} | {audio} | {name} | {row['av_sync_ms']} "
                      f"({row['av_sync_p5_ms']}..{row['av_sync_p95_ms']}) | "
                      f"{row['av_sync_pairs']} | {row['av_sync_detectable_pct']} | {row['fps']} "
                      f"| {row['freezes']} |", flush=True)  # fmt: skip
    write_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
