"""Run against run on what the viewer sees: PSNR/SSIM higher is better, freezes fewer."""

from __future__ import annotations

import json
from pathlib import Path

from streamlab.experiments.compare import compare


def result_file(path: Path, repeats: list[dict[str, float]]) -> Path:
    doc = {"benchmarks": [{"name": "s", "params": {"codec": "vp8"},
                           "extra_info": {"repeats": repeats}}]}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


Repeats = list[dict[str, float]]


def verdicts(tmp_path: Path, a: Repeats, b: Repeats) -> dict[str, str]:
    rows = compare(result_file(tmp_path / "a.json", a), result_file(tmp_path / "b.json", b))
    return {r.metric: r.verdict for r in rows}


def repeats(**spread: tuple[float, float]) -> list[dict[str, float]]:
    """Four repeats per metric: base, base + step, base + 2 step, base + 3 step."""
    return [{k: base + i * step for k, (base, step) in spread.items()} for i in range(4)]


def test_higher_psnr_ssim_and_harmonic_fps_are_better(tmp_path: Path) -> None:
    a = repeats(psnr_y_mean_db=(36.0, 0.05), ssim_y_mean=(0.90, 0.001), harmonic_fps=(20.0, 0.1))
    b = repeats(psnr_y_mean_db=(37.0, 0.05), ssim_y_mean=(0.93, 0.001), harmonic_fps=(29.0, 0.1))
    out = verdicts(tmp_path, a, b)
    assert out["psnr_y_mean_db"] == "better"
    assert out["ssim_y_mean"] == "better"
    assert out["harmonic_fps"] == "better"
    back = verdicts(tmp_path, b, a)
    assert back["psnr_y_mean_db"] == back["ssim_y_mean"] == back["harmonic_fps"] == "worse"


def test_a_psnr_step_below_half_a_db_is_the_same_even_when_significant(tmp_path: Path) -> None:
    a = repeats(psnr_y_mean_db=(36.0, 0.01), psnr_yuv_mean_db=(30.0, 0.01))
    b = repeats(psnr_y_mean_db=(36.3, 0.01), psnr_yuv_mean_db=(30.6, 0.01))
    out = verdicts(tmp_path, a, b)
    assert out["psnr_y_mean_db"] == "same"  # 0.3 dB: < 0.5 dB (though 10 % would be 3.6)
    assert out["psnr_yuv_mean_db"] == "better"  # 0.6 dB: 2 % of 30 dB, yet it counts


def test_more_freezes_and_dropped_frames_are_worse(tmp_path: Path) -> None:
    a = repeats(freeze_count=(1.0, 0.0), frames_dropped=(2.0, 1.0), freeze_total_ms=(300, 10))
    b = repeats(freeze_count=(4.0, 1.0), frames_dropped=(20.0, 1.0), freeze_total_ms=(900, 10))
    out = verdicts(tmp_path, a, b)
    assert out["freeze_count"] == out["frames_dropped"] == out["freeze_total_ms"] == "worse"
