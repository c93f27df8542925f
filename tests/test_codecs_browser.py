"""Real headless Chromium decodes our VP9 and AV1 RTP: a page that offers only that codec
(``setCodecPreferences``) receives pre-encoded packets from an aiortc peer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import av
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription

from streamlab.camera.launcher import free_port
from streamlab.webrtc.codecs.loopback import PacketTrack, send_from
from streamlab.webrtc.codecs.samples import SIZE, encode
from streamlab.webrtc.ice import local_addresses

pytestmark = pytest.mark.browser
FRAMES = 150  # 5 s at 30 fps, one keyframe at the start: every frame must decode

PAGE = """<!doctype html><video id="v" autoplay muted playsinline></video><script>
window.result = null;
async function start(mime) {
  const pc = new RTCPeerConnection();
  const transceiver = pc.addTransceiver("video", {direction: "recvonly"});
  const codecs = RTCRtpReceiver.getCapabilities("video").codecs.filter(c =>
    c.mimeType === mime && !/profile(-id)?=[1-9]/.test(c.sdpFmtpLine || ""));
  transceiver.setCodecPreferences(codecs);
  pc.ontrack = e => { document.getElementById("v").srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => { if (pc.iceGatheringState === "complete") r();
                           else pc.onicegatheringstatechange = () =>
                             pc.iceGatheringState === "complete" && r(); });
  const answer = await (await fetch("/offer", {method: "POST",
                                               body: pc.localDescription.sdp})).text();
  await pc.setRemoteDescription({type: "answer", sdp: answer});
  window.pc = pc;
  setInterval(async () => { window.latest = await stats(); }, 100);
  return codecs.length;
}
async function stats() {
  const report = await window.pc.getStats();
  let inbound = null, mimes = {};
  report.forEach(s => { if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
                        if (s.type === "codec") mimes[s.id] = s.mimeType; });
  if (!inbound) return null;
  return {framesReceived: inbound.framesReceived || 0, framesDecoded: inbound.framesDecoded || 0,
          pliCount: inbound.pliCount || 0, keyFramesDecoded: inbound.keyFramesDecoded || 0,
          width: inbound.frameWidth || 0, mime: mimes[inbound.codecId] || null};
}
</script>"""


class Sender:
    """An aiohttp app on 127.0.0.1 in its own thread: serves the page and answers one offer
    with an aiortc peer that sends ``packets`` as ``mime``."""

    def __init__(self, mime: str, packets: list[av.Packet]) -> None:
        self.mime, self.packets = mime, packets
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.track: PacketTrack | None = None
        self._pcs: list[RTCPeerConnection] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _page(self, _: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def _offer(self, request: web.Request) -> web.Response:
        with local_addresses(("127.0.0.1",)):
            pc = RTCPeerConnection()
        self._pcs.append(pc)
        self.track = send_from(pc, self.mime, self.packets)
        await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        with local_addresses(("127.0.0.1",)):
            await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(text=pc.localDescription.sdp)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_post("/offer", self._offer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        for pc in self._pcs:
            await pc.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> Sender:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def encoded() -> dict[str, list[av.Packet]]:
    return {
        "video/VP9": encode("libvpx-vp9", FRAMES),
        "video/AV1": encode("libsvtav1", FRAMES),
    }


def watch(page: Any, sender: Sender) -> tuple[dict[str, Any], dict[str, Any]]:
    """The page's stats once 60 frames are decoded, and after the last frame went out."""
    page.wait_for_function("window.pc && window.pc.connectionState === 'connected'",
                           timeout=20_000)  # fmt: skip
    page.wait_for_function("window.latest && window.latest.framesDecoded >= 60", timeout=20_000)
    early = page.evaluate("stats()")
    page.wait_for_timeout(200)
    while sender.track is not None and sender.track.sent < FRAMES:
        page.wait_for_timeout(200)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # the last frames' packets arrive and decode: until every frame has, or 1 s
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(f"window.latest && window.latest.framesDecoded >= {FRAMES}",
                               timeout=1000)  # fmt: skip
    return early, page.evaluate("stats()")


@pytest.mark.parametrize("mime", ["video/VP9", "video/AV1"])
def test_chromium_decodes_every_frame(
    chromium_page: Any, encoded: dict[str, list[av.Packet]], mime: str
) -> None:
    with Sender(mime, encoded[mime]) as sender:
        chromium_page.goto(sender.url)
        assert chromium_page.evaluate(f"start({mime!r})") >= 1, f"Chromium can receive {mime}"
        early, late = watch(chromium_page, sender)
    print(f"{mime}: {late}")
    assert late["mime"] == mime, "the codec the page offered is the one it receives"
    assert late["framesDecoded"] >= 0.95 * FRAMES - 2
    assert late["framesReceived"] - late["framesDecoded"] <= 1, "every frame received decodes"
    assert late["keyFramesDecoded"] == 1, "one keyframe, then inter frames only"
    assert late["pliCount"] == early["pliCount"], "no PLI on a clean link"
    assert late["width"] == SIZE[0]
