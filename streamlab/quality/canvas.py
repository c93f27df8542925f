"""Quality of what a browser shows, sampled from its canvas about once a second.

A page's ``<video>`` is drawn at its intrinsic size (videoWidth x videoHeight) onto an
offscreen canvas and encoded as PNG by ``toBlob`` (asynchronous: the page's main thread
pays for the draw only, under a millisecond at 640x360); the PNG comes back through
``page.evaluate`` as base64. Off the event loop it is decoded, turned back into I420 by the
inverse of the YUV → RGB matrix the browser says it used (``new VideoFrame(video)
.colorSpace``: BT.601 for this project's streams, which say so; Chromium 156 takes H.264
and VP9 that say nothing for BT.709; BT.601 video range when it says nothing), its frame
code gives the seq, and a ``QualityScorer`` scores it against the server's reference, as
for an aiortc viewer.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from streamlab import framecode
from streamlab.quality.reference import ReferenceReader
from streamlab.quality.scorer import QualityScorer, Scored

# Kr, Kb of each matrix a WebCodecs VideoColorSpace may name
KR_KB: dict[str, tuple[float, float]] = {
    "bt709": (0.2126, 0.0722), "bt470bg": (0.299, 0.114), "smpte170m": (0.299, 0.114),
    "bt2020-ncl": (0.2627, 0.0593),
}  # fmt: skip
DEFAULT_MATRIX = "smpte170m"

GRAB = """async () => {
  const video = document.querySelector("#player video") || document.querySelector("video");
  if (!video || !video.videoWidth || !video.videoHeight) return null;
  const started = performance.now();
  const w = video.videoWidth, h = video.videoHeight;
  let space = null;
  if (typeof VideoFrame === "function") {
    try { const f = new VideoFrame(video); space = f.colorSpace.toJSON(); f.close(); }
    catch (e) { space = null; }
  }
  const canvas = window.__slCanvas || (window.__slCanvas = document.createElement("canvas"));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  canvas.getContext("2d").drawImage(video, 0, 0, w, h);
  const at = Date.now();
  const mainMs = performance.now() - started;
  const blob = await new Promise((done) => canvas.toBlob(done, "image/png"));
  if (!blob) return null;
  const url = await new Promise((done, fail) => {
    const reader = new FileReader();
    reader.onload = () => done(reader.result);
    reader.onerror = () => fail(reader.error);
    reader.readAsDataURL(blob);
  });
  return {at, w, h, matrix: space && space.matrix, fullRange: !!(space && space.fullRange),
          png: url.slice(url.indexOf(",") + 1), mainMs, grabMs: performance.now() - started};
}"""


def rgb_to_i420(bgr: np.ndarray, matrix: str | None = None, full_range: bool = False) -> np.ndarray:
    """BGR ``(h, w, 3)`` (a canvas's pixels) → I420 ``(h*3//2, w)`` by the inverse of the
    browser's ``matrix`` (a WebCodecs name; BT.601 when unknown), video or full range;
    chroma is the mean of each 2x2 block. Odd sizes lose their last row or column."""
    height, width = bgr.shape[0] & ~1, bgr.shape[1] & ~1
    kr, kb = KR_KB.get(matrix or DEFAULT_MATRIX, KR_KB[DEFAULT_MATRIX])
    luma = np.array([kb, 1.0 - kr - kb, kr])  # weights of B, G, R
    u = (np.array([1.0, 0.0, 0.0]) - luma) / (2 * (1 - kb))
    v = (np.array([0.0, 0.0, 1.0]) - luma) / (2 * (1 - kr))
    scale_y, scale_c, offset_y = (1.0, 1.0, 0.0) if full_range else (219 / 255, 224 / 255, 16.0)
    transform = np.array(
        [[*(luma * scale_y), offset_y], [*(u * scale_c), 128.0], [*(v * scale_c), 128.0]],
        dtype=np.float32,
    )
    yuv = cv2.transform(bgr[:height, :width].astype(np.float32), transform)
    out = np.empty((height * 3 // 2, width), dtype=np.uint8)
    out[:height] = np.clip(np.rint(yuv[..., 0]), 0, 255)
    chroma = cv2.resize(yuv[..., 1:], (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    planes = out[height:].reshape(2, height // 2, width // 2)
    planes[:] = np.clip(np.rint(np.moveaxis(chroma, 2, 0)), 0, 255)
    return out


@dataclass(frozen=True, slots=True)
class CanvasSample:
    """One canvas sample: when it was drawn (epoch ms), its size, the seq its code gave
    (None: unreadable), the matrix used, and its cost in the page: the main thread's part
    (draw) and the whole grab (to base64 PNG), in ms."""

    at_ms: float
    width: int
    height: int
    seq: int | None
    matrix: str
    main_ms: float
    grab_ms: float


def decode(grab: dict[str, Any]) -> tuple[np.ndarray, framecode.FrameCode | None]:
    """A ``GRAB`` result → its I420 planes and frame code (None when unreadable)."""
    png = np.frombuffer(base64.b64decode(grab["png"]), dtype=np.uint8)
    bgr = cv2.imdecode(png, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("the canvas sample is not a PNG")
    yuv = rgb_to_i420(bgr, grab.get("matrix"), bool(grab.get("fullRange")))
    code = framecode.try_read(yuv[: yuv.shape[0] * 2 // 3], now=int(grab["at"]))
    return yuv, code


class CanvasSampler:
    """Samples one page's video (``sample(page)``) and scores each readable sample against
    the reference folder of the server (``ReferenceWriter``) in a scorer thread; scores go
    to ``results``, every sample to ``samples``."""

    def __init__(self, reference: str, results: list[Scored]) -> None:
        self.samples: list[CanvasSample] = []
        self.failed = 0  # grabs that gave nothing: no frame yet, the page gone, a bad PNG
        self._reader = ReferenceReader(reference)
        self.scorer = QualityScorer(self._reader, results=results)

    async def sample(self, page: Any) -> CanvasSample | None:
        """Grab the frame the page shows now and hand it to the scorer (None: no sample)."""
        from playwright.async_api import Error as PlaywrightError

        try:
            grab = await page.evaluate(GRAB)
            decoded = await asyncio.to_thread(decode, grab) if grab else None
        except (PlaywrightError, ValueError, KeyError):
            decoded = None
        if not decoded:
            self.failed += 1
            return None
        yuv, code = decoded
        at = float(grab["at"])
        sample = CanvasSample(at, int(grab["w"]), int(grab["h"]), code.seq if code else None,
                              str(grab.get("matrix") or DEFAULT_MATRIX),
                              float(grab["mainMs"]), float(grab["grabMs"]))  # fmt: skip
        self.samples.append(sample)
        if code is not None:
            self.scorer.submit(at, code.seq, yuv)
        return sample

    def close(self) -> None:
        """Score what is queued, then let the reference go (blocks: call from a thread)."""
        self.scorer.close()
        self._reader.close()
