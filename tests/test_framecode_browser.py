"""The JavaScript frame-code reader agrees with Python, in real headless Chromium."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamlab import framecode
from streamlab.sources.synthetic import SyntheticScene

SCRIPT = Path(framecode.__file__).parent / "webrtc" / "static" / "framecode.js"
pytestmark = pytest.mark.browser

PAGE = """<html><body><canvas id="c"></canvas><script>%s</script><script>
async function readPng(src, nowMs, regionOnly) {
  const img = new Image(); img.src = src; await img.decode();
  const c = document.getElementById('c'); c.width = img.width; c.height = img.height;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  if (!regionOnly) return readFrameCode(ctx.getImageData(0, 0, c.width, c.height), c.width, c.height, nowMs);
  const cell = Math.max(8, Math.floor(img.width / 40)), w = 14 * cell, h = 8 * cell;
  return readFrameCode(ctx.getImageData(0, 0, w, h), w, h, nowMs, img.width);
}
</script></body></html>"""


def png_data_url(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode()


def test_js_reader_matches_python(chromium_page) -> None:  # type: ignore[no-untyped-def]
    page = chromium_page
    page.set_content(PAGE % SCRIPT.read_text())
    now_ms = 1_795_000_000_000
    for (width, height), seq in [((320, 240), 1), ((640, 480), 4242), ((1280, 720), 2**24 - 1)]:
        image, _ = SyntheticScene(width, height).render(seq)
        framecode.burn(image, seq, now_ms - 40)
        for region_only in (False, True):
            got = page.evaluate("([s, n, r]) => readPng(s, n, r)",
                                [png_data_url(image), now_ms, region_only])  # fmt: skip
            assert got == {"seq": seq, "capturedMs": now_ms - 40}
    blank = np.zeros((480, 640, 3), np.uint8)
    assert page.evaluate("([s, n]) => readPng(s, n)", [png_data_url(blank), now_ms]) is None
