"""``streamlab serve``: serve analysed streams over WebRTC (WHEP) with a viewer page."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from streamlab.config import load_config


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="serve streams to browsers over WebRTC (WHEP)")
    parser.add_argument(
        "--source", action="append", required=True,
        help="rtsp://..., synthetic://... or a file; repeat for several",
    )  # fmt: skip
    parser.add_argument(
        "--name", action="append", default=[],
        help="stream name, one per --source (default: from the URL)",
    )  # fmt: skip
    parser.add_argument("--codec", help="vp8 | h264 | passthrough (default vp8)")
    parser.add_argument(
        "--quality",
        help="per-viewer quality: fixed:source (default) | fixed:640x360 | aimd | bandwidth",
    )
    parser.add_argument(
        "--network", help="emulated link per viewer, e.g. rate=800k,delay=40ms,loss=1%%"
    )
    parser.add_argument(
        "--start-bitrate",
        help="a new viewer's estimate, e.g. 300k (default): its first rung, then probes",
    )
    parser.add_argument(
        "--playout-delay",
        help="how long browsers may hold a frame: 0 (default: at once) | browser | MS | MIN-MAX",
    )
    parser.add_argument(
        "--audio", choices=["auto", "opus", "off"],
        help="the camera's audio: auto (default: PCMA/PCMU pass through, else Opus) | opus | off",
    )  # fmt: skip
    parser.add_argument(
        "--lip-sync", action=argparse.BooleanOptionalAction, default=None,
        help="let the browser hold the video for the sound (default on; --no-lip-sync: "
        "latency-first video, the sound lags by the browser's audio buffer)",
    )  # fmt: skip
    parser.add_argument("--analyze", help="detectors, e.g. motion,people")
    parser.add_argument(
        "--overlay", action="store_true", default=None,
        help="burn the boxes into the video (for players that cannot draw them; the viewer "
        "page then draws none)",
    )  # fmt: skip
    parser.add_argument("--skipping", help="skipping strategy, e.g. every_nth:3")
    parser.add_argument("--buffering", help="buffering strategy, e.g. latest")
    parser.add_argument(
        "--forward", action="append", default=[],
        help="also send every stream to a Janus Streaming mountpoint: "
        "janus:http://HOST:8088/janus[?id=N&codec=vp8|h264|passthrough&rung=0]",
    )  # fmt: skip
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8080; 0 = any free port)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamlab.webrtc.server import Server

    analyze = [n.strip() for n in args.analyze.split(",") if n.strip()] if args.analyze else None
    config = load_config(codec=args.codec, quality=args.quality, network=args.network,
                         analyze=analyze, playout_delay=args.playout_delay, overlay=args.overlay,
                         audio=args.audio, lip_sync=args.lip_sync,
                         start_bitrate=args.start_bitrate,
                         skipping=args.skipping, buffering=args.buffering, host=args.host,
                         port=args.port)  # fmt: skip
    if len(args.name) > len(args.source):
        raise SystemExit("streamlab serve: error: more --name than --source")
    server = Server(config)
    for index, source in enumerate(args.source):
        name = args.name[index] if index < len(args.name) else None
        server.add_stream(source, name=name)
    for forward in args.forward:
        server.add_forward(forward)
    return asyncio.run(_serve(server))


async def _serve(server: Any) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        names = ", ".join(server.streams)
        print(f"streamlab: serving {names}", flush=True)
        print(f"viewer: {server.url}", flush=True)
        for name in server.streams:
            print(f"whep: {server.url}whep/{name}", flush=True)
        await stop.wait()
    finally:
        await server.stop()
    return 0
