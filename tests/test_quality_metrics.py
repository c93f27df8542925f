"""PSNR / SSIM of a received I420 frame against its reference: formula, mask, scaling."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from streamlab import framecode
from streamlab.frame import bgr_to_i420
from streamlab.quality.metrics import (
    MAX_PSNR_DB,
    frame_quality,
    psnr_from_mse,
    split_i420,
    ssim,
    upscale_i420,
)
from streamlab.sources.synthetic import SyntheticScene


def scene_frame(width: int = 640, height: int = 480, seq: int = 7) -> np.ndarray:
    """A textured synthetic frame with its code burned in, as I420."""
    image, _ = SyntheticScene(width, height, objects=3, seed=1).render(seq)
    yuv = bgr_to_i420(image)
    framecode.burn_i420(yuv, seq, 1_000)
    return yuv


def mid_grey_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """Values 60..190 everywhere, so added noise of a few levels is never clipped."""
    rng = np.random.default_rng(3)
    return rng.integers(60, 191, size=(height * 3 // 2, width), dtype=np.uint8)


def resized_i420(yuv: np.ndarray, width: int, height: int) -> np.ndarray:
    y, u, v = split_i420(yuv)
    out = np.empty((height * 3 // 2, width), dtype=np.uint8)
    oy, ou, ov = split_i420(out)
    oy[:] = cv2.resize(y, (width, height), interpolation=cv2.INTER_AREA)
    ou[:] = cv2.resize(u, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    ov[:] = cv2.resize(v, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    return out


def test_identical_frames_score_the_cap_and_ssim_one() -> None:
    yuv = scene_frame()
    quality = frame_quality(yuv.copy(), yuv)
    assert quality.psnr_y == MAX_PSNR_DB
    assert quality.psnr_yuv == MAX_PSNR_DB
    assert quality.ssim_y == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_added_gaussian_noise_gives_the_predicted_psnr(sigma: float) -> None:
    reference = mid_grey_frame()
    rng = np.random.default_rng(int(sigma))
    noisy = reference + rng.normal(0.0, sigma, size=reference.shape)
    received = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    # rounding to integers adds uniform error of variance 1/12
    predicted = 10 * math.log10(255**2 / (sigma**2 + 1 / 12))
    quality = frame_quality(received, reference)
    assert quality.psnr_y == pytest.approx(predicted, abs=0.2)
    assert quality.psnr_yuv == pytest.approx(predicted, abs=0.2)
    assert 0 < quality.ssim_y < 1


def test_noise_only_in_chroma_lowers_psnr_yuv_by_the_6_1_1_weights() -> None:
    reference = mid_grey_frame()
    received = reference.copy()
    u = split_i420(received)[1]
    u += 4  # every U sample off by 4: MSE-U 16, MSE-V 0
    quality = frame_quality(received, reference)
    assert quality.psnr_y == MAX_PSNR_DB
    assert quality.psnr_yuv == pytest.approx(10 * math.log10(255**2 / (16 / 8)), abs=0.01)


def test_garbage_only_inside_the_code_box_is_not_counted() -> None:
    reference = scene_frame()
    received = reference.copy()
    width, height = reference.shape[1], reference.shape[0] * 2 // 3
    _, _, box_w, box_h = framecode.region(width)
    rng = np.random.default_rng(5)
    y, u, v = split_i420(received)
    y[:box_h, :box_w] = rng.integers(0, 256, size=(box_h, box_w), dtype=np.uint8)
    cb = ((box_h + 1) // 2, (box_w + 1) // 2)
    u[: cb[0], : cb[1]] = rng.integers(0, 256, size=cb, dtype=np.uint8)
    v[: cb[0], : cb[1]] = rng.integers(0, 256, size=cb, dtype=np.uint8)
    quality = frame_quality(received, reference)
    assert quality.psnr_y == MAX_PSNR_DB
    assert quality.psnr_yuv == MAX_PSNR_DB
    assert quality.ssim_y == pytest.approx(1.0, abs=1e-6)
    unmasked = frame_quality(received, reference, exclude_code=False)
    assert unmasked.psnr_y < 30 and unmasked.ssim_y < 0.99
    assert height > box_h


def test_the_row_just_below_the_box_is_counted() -> None:
    reference = scene_frame()
    received = reference.copy()
    _, _, box_w, box_h = framecode.region(reference.shape[1])
    received[box_h, :box_w] ^= 0xFF  # the first row below the box, under it
    diff = received[box_h, :box_w].astype(float) - reference[box_h, :box_w]
    kept = 640 * 480 - box_w * box_h
    expected = 10 * math.log10(255**2 * kept / float((diff**2).sum()))
    assert frame_quality(received, reference).psnr_y == pytest.approx(expected, abs=1e-6)


def test_a_downscaled_frame_scores_lower_than_the_original() -> None:
    reference = scene_frame()
    half = resized_i420(reference, 320, 240)
    original = frame_quality(reference.copy(), reference)
    smaller = frame_quality(half, reference)
    assert smaller.psnr_y < original.psnr_y
    assert smaller.psnr_yuv < original.psnr_yuv
    assert smaller.ssim_y < original.ssim_y


def test_psnr_falls_monotonically_over_a_ladder_of_sizes() -> None:
    reference = scene_frame(1280, 720)
    ladder = [(1280, 720), (960, 540), (640, 360), (480, 270), (320, 180)]
    scores = [frame_quality(resized_i420(reference, w, h), reference) for w, h in ladder]
    psnrs = [s.psnr_y for s in scores]
    ssims = [s.ssim_y for s in scores]
    assert psnrs == sorted(psnrs, reverse=True) and len(set(psnrs)) == len(psnrs)
    assert ssims == sorted(ssims, reverse=True)


def test_upscale_keeps_the_reference_size_and_passes_same_size_through() -> None:
    small = scene_frame(320, 240)
    big = upscale_i420(small, 640, 480)
    assert big.shape == (720, 640)
    assert upscale_i420(big, 640, 480) is big


def test_psnr_cap_and_formula() -> None:
    assert psnr_from_mse(0.0) == MAX_PSNR_DB
    assert psnr_from_mse(1e-6) == MAX_PSNR_DB
    assert psnr_from_mse(255.0**2) == pytest.approx(0.0)
    assert psnr_from_mse(100.0) == pytest.approx(28.1308, abs=1e-3)


def test_ssim_of_a_plane_against_its_inverse_is_negative() -> None:
    y = split_i420(mid_grey_frame())[0]
    assert ssim(y, 255 - y, exclude_code=False) < 0
