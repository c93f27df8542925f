"""The usual aiortc setup, for comparison: MediaPlayer + MediaRelay, one encoder per viewer.

Serves the same WHEP endpoint (``POST /whep/cam``) and viewer page as ``streamlab serve``
so the same clients measure both. ``--people`` runs HOG people detection inside
``recv()``, as aiortc's server example does with its OpenCV transforms. Only the ICE
host-address policy (loopback) is shared with streamlab, so media stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import cv2
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.contrib.media import MediaPlayer, MediaRelay
from av import VideoFrame

from streamlab.webrtc.ice import local_addresses
from streamlab.webrtc.server import STATIC


class PeopleTrack(VideoStreamTrack):
    """Runs HOG people detection on every frame inside recv() and draws the boxes."""

    def __init__(self, track: VideoStreamTrack) -> None:
        super().__init__()
        self.track = track
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    async def recv(self) -> VideoFrame:
        frame = await self.track.recv()
        image = frame.to_ndarray(format="bgr24")
        small = cv2.resize(image, (480, image.shape[0] * 480 // image.shape[1]))
        boxes, _ = self.hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
        scale = image.shape[1] / 480
        for x, y, w, h in boxes:
            cv2.rectangle(
                image,
                (int(x * scale), int(y * scale)),
                (int((x + w) * scale), int((y + h) * scale)),
                (0, 255, 0),
                2,
            )
        new = VideoFrame.from_ndarray(image, format="bgr24")
        new.pts, new.time_base = frame.pts, frame.time_base
        return new


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--people", action="store_true")
    args = parser.parse_args()
    player = MediaPlayer(args.source, options={"rtsp_transport": "tcp"})
    relay = MediaRelay()
    peers: set[RTCPeerConnection] = set()

    async def offer(request: web.Request) -> web.Response:
        with local_addresses(("127.0.0.1",)):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            peers.add(pc)
            track = relay.subscribe(player.video)
            pc.addTrack(PeopleTrack(track) if args.people else track)
            await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(
            status=201,
            text=pc.localDescription.sdp,
            content_type="application/sdp",
            headers={"Location": "/whep/cam/x"},
        )

    async def streams(request: web.Request) -> web.Response:
        return web.json_response({"streams": [{"name": "cam", "delivery": {"codec": "baseline"}}]})

    app = web.Application()
    app.router.add_post("/whep/cam", offer)
    app.router.add_delete("/whep/cam/x", lambda r: web.Response(text="ok"))
    app.router.add_get("/api/streams", streams)
    app.router.add_get("/", lambda r: web.FileResponse(STATIC / "index.html"))
    app.router.add_static("/static/", STATIC)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    print(f"viewer: http://127.0.0.1:{args.port}/", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await asyncio.gather(*(pc.close() for pc in peers))
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
