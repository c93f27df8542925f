"""Processes a scenario starts, each measured on its own PID.

``python -m streamlab.experiments.hosts serve --source S --settings JSON`` — streamlab's
server with any settings (``--reference DIR``: also keep the frames its encoders are given
there, for ``streamlab.quality.reference.ReferenceReader``); ``camera`` — the RTSP test
camera (its frame renderer too, so it never shares the measuring process's GIL);
``restreamer`` / ``pyav`` — baselines; ``viewer`` — an aiortc viewer printing what it got
each second (for viewers inside a network namespace). Each prints ``viewer: URL`` /
``camera: URL`` once ready; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import signal
import sys
import threading
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    from streamlab.config import load_config
    from streamlab.webrtc.server import Server

    settings = json.loads(args.settings)
    overrides: dict[str, Any] = {"host": args.host, "port": args.port}
    if args.host != "127.0.0.1":  # inside a network namespace a test made (a bottleneck)
        overrides.update(allow_public_bind=True, ice_allowed_networks=[args.allow_network])
    config = load_config(**{**settings, **overrides})
    server = Server(config)
    stream = server.add_stream(args.source, name=args.name)
    reference = None
    if args.reference:  # the frames the encoders are given, for the viewers' quality figures
        from streamlab.quality.reference import ReferenceWriter

        reference = ReferenceWriter(args.reference, slots=args.reference_slots)
        stream.pipeline.add_sink(reference)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await server.start()
        try:
            print(f"viewer: {server.url}", flush=True)
            await stop.wait()
        finally:
            await server.stop()
            if reference is not None:
                reference.close()

    asyncio.run(main())
    return 0


def camera_kwargs(options: dict[str, str]) -> dict[str, Any]:
    """Camera options (``gop``, ``profile`` ...) that ``TestCamera`` accepts; others dropped."""
    from streamlab.camera.launcher import TestCamera

    accepted = inspect.signature(TestCamera).parameters
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key in accepted:
            kwargs[key] = int(value) if value.isdigit() else value
        else:
            print(f"camera: option {key!r} not supported by this TestCamera; ignored",
                  file=sys.stderr, flush=True)  # fmt: skip
    return kwargs


def _camera(args: argparse.Namespace) -> int:
    from streamlab.camera.launcher import TestCamera

    width, height = (int(v) for v in args.size.split("x"))
    options = json.loads(args.options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with TestCamera(size=(width, height), fps=args.fps, **camera_kwargs(options)) as camera:
        print(f"camera: {camera.url}", flush=True)
        while not stop.wait(0.5):
            if not camera.running:
                return 1
    return 0


def _restreamer(args: argparse.Namespace) -> int:
    from streamlab.experiments.baselines import serve_restreamer

    asyncio.run(serve_restreamer(args.source, args.port, args.network, args.host))
    return 0


def _pyav(args: argparse.Namespace) -> int:
    from streamlab.experiments.baselines import run_pyav

    return run_pyav(args.source, args.codec)


def _viewer(args: argparse.Namespace) -> int:
    from streamlab.experiments.behind import watch_with_aiortc

    asyncio.run(watch_with_aiortc(args.url, args.address, args.seconds))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamlab.experiments.hosts")
    sub = parser.add_subparsers(dest="kind", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--source", required=True)
    serve.add_argument("--name", default="cam")
    serve.add_argument("--settings", default="{}", help="JSON object of settings")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--allow-network", default="198.18.0.0/15",
                       help="remote ICE candidates allowed when not on loopback")  # fmt: skip
    serve.add_argument("--reference", default="", help="folder for reference frames (quality)")
    serve.add_argument("--reference-slots", type=int, default=120, help="frames kept per size")
    serve.set_defaults(run=_serve)
    camera = sub.add_parser("camera")
    camera.add_argument("--size", default="640x480")
    camera.add_argument("--fps", type=int, default=30)
    camera.add_argument("--options", default="{}", help="JSON object: gop, profile ...")
    camera.set_defaults(run=_camera)
    restreamer = sub.add_parser("restreamer")
    restreamer.add_argument("--source", required=True)
    restreamer.add_argument("--port", type=int, required=True)
    restreamer.add_argument("--network", default="", help="emulated link spec, e.g. rate=800k")
    restreamer.add_argument("--host", default="127.0.0.1")
    restreamer.set_defaults(run=_restreamer)
    viewer = sub.add_parser("viewer", help="an aiortc viewer printing a JSON line a second")
    viewer.add_argument("--url", required=True, help="the server's base URL")
    viewer.add_argument("--address", default="127.0.0.1", help="local address for ICE")
    viewer.add_argument("--seconds", type=float, default=20.0)
    viewer.set_defaults(run=_viewer)
    pyav = sub.add_parser("pyav")
    pyav.add_argument("--source", required=True)
    pyav.add_argument("--codec", default="vp8")
    pyav.set_defaults(run=_pyav)
    args = parser.parse_args(argv)
    from streamlab.errors import StreamlabError

    try:
        code: int = args.run(args)
        return code
    except (StreamlabError, OSError) as exc:
        print(f"{args.kind}: error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
