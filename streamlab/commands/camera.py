"""``streamlab camera``: a real RTSP test camera on 127.0.0.1 (GStreamer RTSP server)."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("camera", help="serve a test RTSP camera on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="cam")
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (synthetic source)")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument(
        "--source", default="synthetic://", help="synthetic://?objects=3&seed=0 or a video file"
    )
    parser.add_argument(
        "--audio", default="none", choices=["none", "pcma", "pcmu", "aac"],
        help="a microphone: a test tone as PCMA, PCMU or AAC (default none)",
    )  # fmt: skip
    parser.add_argument(
        "--wave", default="sine", choices=["sine", "ticks", "sync"],
        help="tone, clicks, or sync: a marked frame a second and a click at its instant",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamlab.camera.launcher import TestCamera
    from streamlab.sources.synthetic import parse_size

    camera = TestCamera(
        port=args.port, path=args.path, size=parse_size(args.size), fps=args.fps,
        source=args.source, audio=args.audio, wave=args.wave,
    )  # fmt: skip
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with camera:
        print(f"camera: {camera.url}  (Ctrl-C to stop)", flush=True)
        while not stop.wait(0.5):
            if not camera.running:
                print("camera: the server exited", flush=True)
                return 1
    return 0
