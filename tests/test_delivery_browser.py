"""A codec per viewer in real headless Chromium: an H.264-only and a VP8-only browser viewer
of one stream both play, and a quality change reaches a playing browser."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest

from streamlab.testing import served_by_cli

pytestmark = pytest.mark.browser

# A WHEP viewer whose offer lists one video codec (as a browser without the other would).
WATCH_ONE_CODEC = """
async ([whep, mime]) => {
  const pc = new RTCPeerConnection();
  const transceiver = pc.addTransceiver("video", {direction: "recvonly"});
  const codecs = RTCRtpReceiver.getCapabilities("video").codecs
    .filter((c) => c.mimeType.toLowerCase() === mime.toLowerCase());
  transceiver.setCodecPreferences(codecs);
  const video = document.createElement("video");
  video.muted = true; video.autoplay = true; document.body.appendChild(video);
  pc.ontrack = (event) => { video.srcObject = event.streams[0] || new MediaStream([event.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch(whep, {method: "POST", body: pc.localDescription.sdp,
                                       headers: {"Content-Type": "application/sdp"}});
  if (response.status !== 201) return {status: response.status, error: await response.text()};
  await pc.setRemoteDescription({type: "answer", sdp: await response.text()});
  window.viewers = (window.viewers || []).concat([{pc, video}]);
  return {status: 201};
}
"""

PLAYED = """
async (index) => {
  const {pc, video} = window.viewers[index];
  const stats = await pc.getStats();
  let inbound = null, codecs = {};
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
    if (s.type === "codec") codecs[s.id] = s.mimeType;
  });
  return {codec: inbound ? codecs[inbound.codecId] : null,
          frames: inbound ? inbound.framesDecoded : 0,
          width: video.videoWidth, height: video.videoHeight};
}
"""


@pytest.fixture
def served() -> Iterator[str]:
    with served_by_cli("--source", "synthetic://?size=640x480&fps=30", "--name", "demo",
                       "--codec", "vp8") as url:  # fmt: skip
        yield url


def test_h264_only_and_vp8_only_browsers_both_play_one_stream(served: str, chromium_page) -> None:  # type: ignore[no-untyped-def]
    page = chromium_page
    page.goto(served)
    whep = served + "whep/demo"
    assert page.evaluate(WATCH_ONE_CODEC, [whep, "video/H264"])["status"] == 201
    assert page.evaluate(WATCH_ONE_CODEC, [whep, "video/VP8"])["status"] == 201
    page.wait_for_function("window.viewers.every((v) => v.video.videoWidth > 0)", timeout=30_000)
    first = [page.evaluate(PLAYED, i) for i in (0, 1)]
    started = time.monotonic()
    while True:  # 2 s, or until both decoded 16 more frames (the counts only grow)
        waited = time.monotonic() - started >= 2.0
        second = [page.evaluate(PLAYED, i) for i in (0, 1)]
        decoded = [
            after["frames"] - before["frames"] for before, after in zip(first, second, strict=True)
        ]
        if waited or min(decoded) >= 16:
            break
        page.wait_for_timeout(100)
    assert [s["codec"] for s in second] == ["video/H264", "video/VP8"]
    for before, after in zip(first, second, strict=True):
        assert after["frames"] - before["frames"] >= 16, "both keep decoding (>= 8 fps)"
        assert (after["width"], after["height"]) == (640, 480)
    with urllib.request.urlopen(served + "api/streams") as response:
        stream = json.load(response)["streams"][0]
    assert {e["key"] for e in stream["delivery"]["encoders"]} == {"h264/source", "vp8/source"}

    request = urllib.request.Request(
        served + "api/streams/demo",
        method="PATCH",
        data=b'{"quality": "fixed:320x180"}',
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    page.wait_for_function(
        "window.viewers.every((v) => v.video.videoWidth === 240)", timeout=10_000
    )
