"""The codec rate-quality sweep: the project's own encoders at several bitrates, decoded and
scored; BD-rate against VP8, the JSON, the markdown table and the plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from streamlab.bench.codec_clips import synthetic_clip
from streamlab.bench.codec_report import bd_table, write
from streamlab.bench.codec_sweep import RdPoint, measure, sweep, targets_for
from streamlab.strategies.codec import TRANSCODED

FACTORS = (0.25, 1.0, 4.0)


@pytest.fixture(scope="module")
def points() -> list[RdPoint]:
    clip = synthetic_clip(frames=12, width=320, height=240)
    return sweep([clip], factors=FACTORS)


def test_every_codec_gets_better_with_more_bitrate(points: list[RdPoint]) -> None:
    assert {p.codec for p in points} == set(TRANSCODED)
    for codec in TRANSCODED:
        curve = sorted((p for p in points if p.codec == codec), key=lambda p: p.target_bps)
        assert len(curve) == len(FACTORS)
        assert [p.rate_bps for p in curve] == sorted(p.rate_bps for p in curve), codec
        assert curve[-1].psnr_y > curve[0].psnr_y + 1.0, codec  # generous: 16x the rate
        assert curve[-1].ssim_y > curve[0].ssim_y, codec
        for p in curve:
            assert p.frames == 12 and p.keyframes >= 1
            assert p.repeated == 0  # every frame encoded and decoded once, in order
            assert 10 < p.psnr_y <= 48 and 0 < p.ssim_y <= 1
            assert 0 < p.encode_ms_p50 <= p.encode_ms_p95


def test_rate_follows_the_target(points: list[RdPoint]) -> None:
    for p in points:
        if p.target_bps >= 200_000:  # the lowest rungs may sit on an encoder's rate floor
            assert 0.3 * p.target_bps < p.rate_bps < 2.0 * p.target_bps, p


def test_bd_rate_is_finite_for_every_codec(points: list[RdPoint]) -> None:
    rows = bd_table(points)
    assert {r.codec for r in rows} == {"h264", "vp9", "av1"}
    for row in rows:
        assert row.psnr_y is not None and math.isfinite(row.psnr_y)
        assert -100 < row.psnr_y < 1000


def test_report_is_written(points: list[RdPoint], tmp_path: Path) -> None:
    report = write(points, tmp_path, {"note": "tiny"}, budget=points[:2])
    data = json.loads(report.json.read_text())
    assert len(data["points"]) == len(points)
    assert {r["codec"] for r in data["bd_rate"]} == {"h264", "vp9", "av1"}
    assert {r["codec"] for r in data["top_rung"]} == set(TRANSCODED)
    text = report.markdown.read_text()
    assert "| synthetic |" in text and "H.264" in text and "AV1" in text
    assert text.count("| synthetic | ") >= 1 + len(points)  # BD row + every point
    assert "Encode ms per frame on real pictures scaled to 320x240@30" in text
    assert len(data["budget_points"]) == 2
    assert report.plot is not None and report.plot.stat().st_size > 1000


def test_targets_scale_with_the_ladder() -> None:
    clip = synthetic_clip(frames=2, width=320, height=240)
    assert targets_for(clip, (0.5, 1.0)) == [92_160, 184_320]  # 320x240x30x0.08 = 184k


def test_unknown_codec_is_refused() -> None:
    clip = synthetic_clip(frames=2, width=320, height=240)
    with pytest.raises(ValueError, match="passthrough"):
        measure(clip, "passthrough", 100_000)
