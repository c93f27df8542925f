"""Baselines measured in the same run as streamlab, on the same source.

- ``restreamer``: the usual aiortc server — ``MediaPlayer`` + ``MediaRelay``, one encoder per
  viewer — behind the same WHEP endpoint and viewer page, optionally behind the same
  emulated link (``--network``), so the same viewers measure both. Like aiortc's own
  examples it also relays the source's audio (decoded, Opus per viewer) to a viewer whose
  offer has audio.
- ``ffmpeg`` / ``pyav``: decode + encode the source in real time with no delivery: the
  floor of what transcoding one stream costs (CPU, RSS, fps); no latency.

Each runs as its own process (``python -m streamlab.experiments.hosts restreamer|pyav ...``)
so its CPU and RSS are measured on its PID.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from fractions import Fraction
from typing import Any

ENCODERS = {"vp8": "libvpx", "h264": "libx264"}
FFMPEG_OPTIONS = {
    "vp8": ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "16", "-lag-in-frames", "0"],
    "h264": ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0"],
}


def input_options(source: str) -> list[str]:
    """ffmpeg input options: RTSP over TCP, files in real time, looped."""
    if source.startswith(("rtsp://", "rtsps://")):
        return ["-rtsp_transport", "tcp", "-i", source]
    return ["-re", "-stream_loop", "-1", "-i", source.removeprefix("file://")]


def ffmpeg_command(source: str, codec: str, bitrate: int = 2_000_000) -> list[str]:
    """Real-time transcode to nowhere, progress (``frame=N``) on stdout once a second."""
    options = FFMPEG_OPTIONS.get(codec, FFMPEG_OPTIONS["vp8"])
    return ["ffmpeg", "-v", "error", "-nostdin", *input_options(source), "-an", *options,
            "-b:v", str(bitrate), "-threads", "1", "-progress", "pipe:1", "-stats_period", "1",
            "-f", "null", "-"]  # fmt: skip


def run_pyav(source: str, codec: str, bitrate: int = 2_000_000) -> int:
    """Decode + encode with PyAV until SIGTERM; prints ``frame=N`` once a second."""
    import av

    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    options = {"rtsp_transport": "tcp"} if source.startswith("rtsp") else {}
    container = av.open(source.removeprefix("file://"), options=options)
    stream = container.streams.video[0]
    encoder: Any = av.CodecContext.create(ENCODERS.get(codec, "libvpx"), "w")
    encoder.width, encoder.height = stream.codec_context.width, stream.codec_context.height
    encoder.pix_fmt, encoder.bit_rate = "yuv420p", bitrate
    encoder.time_base = stream.time_base or Fraction(1, 90000)
    if codec == "h264":
        encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
    else:
        encoder.options = {"deadline": "realtime", "cpu-used": "16", "lag-in-frames": "0"}
    frames, shown, started = 0, time.monotonic(), time.monotonic()
    realtime = not source.startswith("rtsp")
    while not stop:
        for frame in container.decode(stream):
            if stop:
                break
            encoder.encode(frame.reformat(format="yuv420p"))
            frames += 1
            if realtime and frame.time is not None:  # a file plays at its own rate
                ahead = frame.time - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if time.monotonic() - shown >= 1.0:
                print(f"frame={frames}", flush=True)
                shown = time.monotonic()
        else:
            if not realtime:
                break
            container.seek(0)
            started = time.monotonic()
    print(f"frame={frames}", flush=True)
    container.close()
    return 0


async def serve_restreamer(
    source: str, port: int, network: str = "", host: str = "127.0.0.1"
) -> None:
    """The usual aiortc restreamer on ``host``:``port`` until SIGTERM."""
    from aiohttp import web
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer, MediaRelay

    from streamlab.webrtc.ice import local_addresses
    from streamlab.webrtc.server import STATIC

    attach = _link_attacher(network)
    options = {"rtsp_transport": "tcp"} if source.startswith("rtsp") else {}
    player = MediaPlayer(source.removeprefix("file://"), options=options)
    relay = MediaRelay()
    video = player.video
    if video is None:
        raise SystemExit(f"restreamer: error: no video in {source}")
    peers: set[Any] = set()
    links: list[Any] = []

    async def offer(request: web.Request) -> web.Response:
        with local_addresses((host,)):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            peers.add(pc)
            pc.addTrack(relay.subscribe(video))
            offer_sdp = await request.text()
            if player.audio is not None and "m=audio" in offer_sdp:
                pc.addTrack(relay.subscribe(player.audio))
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            if attach is not None:
                links.append(attach(pc))
        return web.Response(status=201, text=pc.localDescription.sdp,
                            content_type="application/sdp",
                            headers={"Location": f"/whep/cam/{len(peers)}"})  # fmt: skip

    async def streams(request: web.Request) -> web.Response:
        body = {"name": "cam", "delivery": {"codec": "restreamer", "viewers": len(peers)},
                "pipeline": {}, "viewers": []}  # fmt: skip
        return web.json_response({"streams": [body]})

    async def gone(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    app = web.Application()
    app.router.add_post("/whep/cam", offer)
    app.router.add_delete("/whep/cam/{session}", gone)
    app.router.add_get("/api/streams", streams)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"viewer: http://{host}:{port}/", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await asyncio.gather(*(pc.close() for pc in peers), return_exceptions=True)
    await runner.cleanup()


def _link_attacher(network: str) -> Any:
    """``pc -> link`` putting a peer behind the emulated link, or None without a spec."""
    if not network:
        return None
    try:
        from streamlab.delivery.network import NetworkSpec, attach_link
    except ImportError:
        print("restreamer: error: --network needs streamlab.delivery.network (not available)",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2) from None
    spec = NetworkSpec.parse(network)
    return lambda pc: attach_link(pc, spec)
