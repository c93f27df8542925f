"""One stream, four Chromium viewers, each offering one codec (VP8, H.264, VP9, AV1): each
gets the codec it offered from the one stream, encoded once per (codec, rung)."""

from __future__ import annotations

import time

import pytest

from streamlab.testing import served_by_cli

pytestmark = pytest.mark.browser
SYNTHETIC = "synthetic://?size=640x480&fps=30&objects=3"
# the page's player adds a recvonly video transceiver: keep only the codec this viewer offers
ONE_CODEC = """
const wanted = "%s";
const add = RTCPeerConnection.prototype.addTransceiver;
RTCPeerConnection.prototype.addTransceiver = function (...args) {
  const transceiver = add.apply(this, args);
  if (args[0] === "video") {
    const codecs = RTCRtpReceiver.getCapabilities("video").codecs.filter((c) =>
      c.mimeType === wanted && (!c.sdpFmtpLine || !/profile-id=[1-3]|profile=[1-2]/.test(c.sdpFmtpLine)));
    transceiver.setCodecPreferences(codecs);
  }
  return transceiver;
};
"""
MIMES = ("video/VP8", "video/H264", "video/VP9", "video/AV1")
PLAYS_FPS = 8
WINDOW_S = 3.0


@pytest.mark.timeout(180)
def test_four_viewers_each_get_the_codec_they_offered(chromium_browser) -> None:  # type: ignore[no-untyped-def]
    with served_by_cli("--source", SYNTHETIC, "--name", "cam", "--codec", "vp8") as url:
        pages = []
        for mime in MIMES:
            context = chromium_browser.new_context()
            context.add_init_script(ONE_CODEC % mime)
            page = context.new_page()
            page.goto(url)
            pages.append((mime, context, page))
        try:
            for _, _, page in pages:
                page.wait_for_function(
                    "window.streamlab && window.streamlab.stats.framesDecoded > 30", timeout=40_000
                )
            first = [page.evaluate("window.streamlab.stats.framesDecoded") for *_, page in pages]
            started = time.monotonic()
            # 3 s, or until every page has decoded the frames that PLAYS_FPS needs over 3 s
            # (the counts only grow: the same check, over the time it took)
            while (elapsed := time.monotonic() - started) < WINDOW_S:
                decoded = [page.evaluate("window.streamlab.stats.framesDecoded")
                           for *_, page in pages]  # fmt: skip
                if all(d - b >= PLAYS_FPS * WINDOW_S for d, b in zip(decoded, first, strict=True)):
                    break
                time.sleep(0.1)
            stats = [page.evaluate("JSON.parse(JSON.stringify(window.streamlab.stats))")
                     for *_, page in pages]  # fmt: skip
        finally:
            for _, context, _ in pages:
                context.close()
    for (mime, *_), before, got in zip(pages, first, stats, strict=True):
        fps = (got["framesDecoded"] - before) / elapsed
        print(f"{mime}: {fps:.1f} fps decoded, {got['size']}, dropped {got['framesDropped']}")
        assert got["codec"] == mime, "each viewer gets the codec it offered"
        assert got["size"] == "640x480"
        assert fps >= PLAYS_FPS, "plays (four decoders and four encoders on a shared 2-core runner)"
