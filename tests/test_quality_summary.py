"""Per-scenario figures folded over viewers: what the experiments JSON carries."""

from __future__ import annotations

import pytest

from streamlab.quality.scorer import Scored
from streamlab.quality.smoothness import Shown
from streamlab.quality.summary import quality_figures, smoothness_figures


def scored(psnrs: list[float]) -> list[Scored]:
    return [Scored(float(i), i, p, p + 1, 0.9, 640, 480) for i, p in enumerate(psnrs)]


def test_quality_figures_mean_p5_and_sampled_fraction() -> None:
    values = [30.0 + i / 10 for i in range(100)]
    out = quality_figures(scored(values), coded_frames=200)
    assert out["psnr_y_mean_db"] == pytest.approx(34.95)
    assert out["psnr_y_p5_db"] == pytest.approx(30.495, abs=0.01)
    assert out["psnr_yuv_mean_db"] == pytest.approx(35.95)
    assert out["ssim_y_mean"] == pytest.approx(0.9)
    assert out["quality_sampled"] == 0.5 and out["quality_frames"] == 100
    assert quality_figures([], 10) == {}


def test_smoothness_figures_sum_counts_and_average_rates() -> None:
    steady = [Shown(i * 1000 / 30, i, 640, 480) for i in range(300)]
    later = [Shown(i * 1000 / 30 + 2000, i + 60, 640, 480) for i in range(150, 300)]
    stalled = steady[:150] + later
    out = smoothness_figures([steady, stalled])
    assert out["freeze_count"] == 1 and isinstance(out["freeze_count"], int)
    assert out["pause_count"] == 0
    assert out["frames_dropped"] == 60  # the seqs jumped over at the stall
    assert out["max_skipped"] == 60
    single = smoothness_figures([steady])
    assert single["harmonic_fps"] == pytest.approx(30.0)
    assert out["harmonic_fps"] < single["harmonic_fps"]
    assert smoothness_figures([]) == {}


def test_the_per_second_psnr_series_keeps_a_sparsely_sampled_viewer() -> None:
    """A Chromium viewer's canvas is scored once a second, after the grab: its last score
    stands for the second; an aiortc viewer's frames of the last second are averaged."""
    from streamlab.experiments.measure import ViewerLog
    from streamlab.experiments.sampling import _recent_psnr
    from streamlab.quality.scorer import Scored

    dense = ViewerLog(quality=[Scored(10_000 - 30 * i, i, 30.0 + i % 2, 0, 0, 64, 48)
                               for i in range(40)])  # fmt: skip
    assert _recent_psnr(dense, 10_001) == 30.5
    sparse = ViewerLog(quality=[Scored(8_300, 1, 33.0, 0, 0, 64, 48)])
    assert _recent_psnr(sparse, 10_000) == 33.0, "1.7 s old: still this second's figure"
    assert _recent_psnr(sparse, 11_000) is None, "2.7 s old: none"
    assert _recent_psnr(ViewerLog(), 10_000) is None
