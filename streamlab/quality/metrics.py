"""Picture quality of one received I420 frame against the source frame it shows.

What libwebrtc's end-to-end analyzer does (``common_video/libyuv/webrtc_libyuv.cc``), with
the frame-code box left out:

- a received frame smaller than its reference is **scaled up to the reference size**
  first (bilinear, ``cv2.INTER_LINEAR``; libwebrtc uses libyuv's box filter, which is
  bilinear when scaling up), so a lower rung is penalised for the detail it lost;
- the frame-code region (``framecode.region(reference width)``) is masked out of Y, and the
  half-size rectangle that covers it out of U and V;
- **PSNR-Y** = 10·log10(255² / MSE-Y); **PSNR-YUV** from the MSEs weighted 6:1:1,
  ``(6·MSE-Y + MSE-U + MSE-V) / 8`` (the 6:1:1 weights of video-codec testing applied to
  MSEs, as ffmpeg's psnr filter combines planes, rather than to the three PSNRs — so one
  perfect plane cannot make the sum infinite); both capped at 48 dB like libwebrtc's
  ``I420PSNR`` (``kPerfectPSNR``);
- **SSIM-Y**: Wang et al.'s SSIM with an 11x11 Gaussian window, sigma = 1.5, K1 = 0.01,
  K2 = 0.03, averaged over window centres whose window lies inside the frame and clear of
  the code box (libyuv's ``I420Ssim`` uses 8x8 windows instead; values differ slightly).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from streamlab import framecode

MAX_PSNR_DB = 48.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_RADIUS = SSIM_WINDOW // 2
YUV_WEIGHTS = (6.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class FrameQuality:
    """PSNR (dB, capped at 48) of Y and of Y, U, V weighted 6:1:1, and SSIM of Y (0..1)."""

    psnr_y: float
    psnr_yuv: float
    ssim_y: float


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for 8-bit samples, capped at ``MAX_PSNR_DB`` (an MSE of 0 gives the cap)."""
    if mse <= 0:
        return MAX_PSNR_DB
    return float(min(MAX_PSNR_DB, 10.0 * np.log10(255.0**2 / mse)))


def split_i420(yuv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y ``(h, w)``, U and V ``(h/2, w/2)`` planes of I420 ``(h*3//2, w)``."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    chroma = yuv[height:].reshape(2, height // 2, width // 2)
    return yuv[:height], chroma[0], chroma[1]


def upscale_i420(yuv: np.ndarray, width: int, height: int) -> np.ndarray:
    """I420 planes scaled (bilinear) to ``width`` x ``height``; the input if already that size."""
    if yuv.shape[1] == width and yuv.shape[0] * 2 // 3 == height:
        return yuv
    y, u, v = split_i420(yuv)
    out = np.empty((height * 3 // 2, width), dtype=np.uint8)
    out_y, out_u, out_v = split_i420(out)
    cv2.resize(y, (width, height), dst=out_y, interpolation=cv2.INTER_LINEAR)
    cv2.resize(u, (width // 2, height // 2), dst=out_u, interpolation=cv2.INTER_LINEAR)
    cv2.resize(v, (width // 2, height // 2), dst=out_v, interpolation=cv2.INTER_LINEAR)
    return out


def code_boxes(width: int, height: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((rows, cols) of Y, (rows, cols) of U/V)`` of the top-left code box to leave out."""
    x, y, w, h = framecode.region(width)
    if x or y:  # the layout puts the code at the top-left corner; the masks rely on it
        raise ValueError("the frame code is expected at (0, 0)")
    luma = (min(h, height), min(w, width))
    chroma = (min((h + 1) // 2, height // 2), min((w + 1) // 2, width // 2))
    return luma, chroma


def _mse_outside(a: np.ndarray, b: np.ndarray, box: tuple[int, int]) -> float:
    kept = a.size - box[0] * box[1]
    if kept <= 0:
        return 0.0
    total = cv2.norm(a, b, cv2.NORM_L2SQR)  # sums of squared 8-bit differences: exact
    if box[0] and box[1]:
        total -= cv2.norm(a[: box[0], : box[1]], b[: box[0], : box[1]], cv2.NORM_L2SQR)
    return float(total) / kept


@lru_cache(maxsize=16)
def _ssim_centres(width: int, height: int) -> tuple[slice, slice, np.ndarray]:
    """Rows and columns of the window centres whose window lies inside the frame, and the
    mask of those whose window is also clear of the code box."""
    rows, cols = slice(_RADIUS, height - _RADIUS), slice(_RADIUS, width - _RADIUS)
    (box_h, box_w), _ = code_boxes(width, height)
    keep = np.ones((height - 2 * _RADIUS, width - 2 * _RADIUS), dtype=bool)
    keep[:box_h, :box_w] = False  # centres up to RADIUS past the box see the box
    keep.flags.writeable = False
    return rows, cols, keep


class _Workspace(threading.local):
    """Float buffers reused per thread and size: fresh megabyte-sized temporaries cost
    page faults on every frame (more than the arithmetic)."""

    def __init__(self) -> None:
        self.shape: tuple[int, int] = (0, 0)
        self.buffers: list[np.ndarray] = []

    def get(self, shape: tuple[int, int], count: int) -> list[np.ndarray]:
        if shape != self.shape or len(self.buffers) < count:
            self.shape = shape
            self.buffers = [np.empty(shape, dtype=np.float32) for _ in range(count)]
        return self.buffers[:count]


_WORKSPACE = _Workspace()


def ssim(a: np.ndarray, b: np.ndarray, *, exclude_code: bool = True) -> float:
    """Mean SSIM of two same-size 8-bit planes (11x11 Gaussian, sigma 1.5), the code box out."""
    height, width = a.shape
    if height <= 2 * _RADIUS or width <= 2 * _RADIUS:
        raise ValueError(f"planes of {width}x{height} are too small for SSIM")
    x, y, mu_x, mu_y, s_xx, s_yy, s_xy, tmp = _WORKSPACE.get((height, width), 8)
    np.copyto(x, a, casting="unsafe")
    np.copyto(y, b, casting="unsafe")
    size = (SSIM_WINDOW, SSIM_WINDOW)
    cv2.GaussianBlur(x, size, SSIM_SIGMA, dst=mu_x)
    cv2.GaussianBlur(y, size, SSIM_SIGMA, dst=mu_y)
    for first, second, out in ((x, x, s_xx), (y, y, s_yy), (x, y, s_xy)):
        np.multiply(first, second, out=tmp)
        cv2.GaussianBlur(tmp, size, SSIM_SIGMA, dst=out)
    # variances and covariance: E[xy] - E[x]E[y], in place
    s_xx -= np.multiply(mu_x, mu_x, out=tmp)
    s_yy -= np.multiply(mu_y, mu_y, out=tmp)
    s_xy -= np.multiply(mu_x, mu_y, out=tmp)
    # numerator (2 mu_x mu_y + C1)(2 s_xy + C2) into x; denominator into y
    np.multiply(mu_x, mu_y, out=x)
    x *= 2
    x += _C1
    s_xy *= 2
    s_xy += _C2
    x *= s_xy
    np.multiply(mu_x, mu_x, out=y)
    y += np.multiply(mu_y, mu_y, out=tmp)
    y += _C1
    s_xx += s_yy
    s_xx += _C2
    y *= s_xx
    rows, cols, keep = _ssim_centres(width, height)
    values = np.divide(x[rows, cols], y[rows, cols], out=tmp[rows, cols])
    if exclude_code:
        return float(values[keep].mean()) if keep.any() else 1.0
    return float(values.mean())


def frame_quality(
    received: np.ndarray, reference: np.ndarray, *, exclude_code: bool = True
) -> FrameQuality:
    """Quality of ``received`` (I420, any size) against ``reference`` (I420, the source's
    size): scaled up, code box out, PSNR-Y, PSNR-YUV (6:1:1) and SSIM-Y."""
    height, width = reference.shape[0] * 2 // 3, reference.shape[1]
    scaled = upscale_i420(received, width, height)
    (luma_box, chroma_box) = code_boxes(width, height) if exclude_code else ((0, 0), (0, 0))
    ref_y, ref_u, ref_v = split_i420(reference)
    got_y, got_u, got_v = split_i420(scaled)
    mse_y = _mse_outside(got_y, ref_y, luma_box)
    mse_u = _mse_outside(got_u, ref_u, chroma_box)
    mse_v = _mse_outside(got_v, ref_v, chroma_box)
    wy, wu, wv = YUV_WEIGHTS
    mse_yuv = (wy * mse_y + wu * mse_u + wv * mse_v) / (wy + wu + wv)
    return FrameQuality(
        psnr_from_mse(mse_y), psnr_from_mse(mse_yuv), ssim(got_y, ref_y, exclude_code=exclude_code)
    )
