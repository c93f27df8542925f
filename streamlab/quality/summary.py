"""Per-scenario figures from what viewers showed and scored: the experiments' JSON keys."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from streamlab.quality.scorer import Scored
from streamlab.quality.smoothness import Shown, smoothness

QUALITY_KEYS = ("psnr_y_mean_db", "psnr_y_p5_db", "psnr_yuv_mean_db", "ssim_y_mean",
                "quality_sampled", "quality_frames")  # fmt: skip
SUMMED = ("freeze_count", "freeze_total_ms", "pause_count", "pause_total_ms",
          "frames_dropped", "frames_repeated", "resolution_switches")  # fmt: skip


def quality_figures(scored: Sequence[Scored], coded_frames: int) -> dict[str, Any]:
    """Mean and 5th percentile of PSNR-Y, mean PSNR-YUV and SSIM-Y over every scored frame
    of every viewer; ``quality_sampled`` = scored / frames whose code was read. Empty when
    nothing was scored."""
    if not scored:
        return {}
    psnr_y = np.array([s.psnr_y for s in scored])
    return {
        "psnr_y_mean_db": round(float(psnr_y.mean()), 2),
        "psnr_y_p5_db": round(float(np.percentile(psnr_y, 5)), 2),
        "psnr_yuv_mean_db": round(float(np.mean([s.psnr_yuv for s in scored])), 2),
        "ssim_y_mean": round(float(np.mean([s.ssim_y for s in scored])), 4),
        "quality_sampled": round(len(scored) / coded_frames, 3) if coded_frames else None,
        "quality_frames": len(scored),
    }


def smoothness_figures(
    viewers: Sequence[Sequence[Shown]], offered: Iterable[int] | None = None
) -> dict[str, Any]:
    """Smoothness of each viewer's frames, folded: counts and durations summed over
    viewers, harmonic fps and time between freezes averaged, max skipped the largest."""
    if not viewers:
        return {}
    offered_list = list(offered) if offered is not None else None
    each = [smoothness(frames, offered_list).to_dict() for frames in viewers]

    def numbers(key: str) -> list[float]:
        return [float(v) for d in each if isinstance(v := d[key], (int, float))]

    out: dict[str, Any] = {}
    for key in SUMMED:
        values = numbers(key)
        total = sum(values)
        out[key] = (round(total, 1) if key.endswith("_ms") else int(total)) if values else None
    for key in ("harmonic_fps", "time_between_freezes_mean_ms", "source_frames_span"):
        values = numbers(key)
        out[key] = round(float(np.mean(values)), 2) if values else None
    skipped = numbers("max_skipped")
    out["max_skipped"] = int(max(skipped)) if skipped else None
    return out
