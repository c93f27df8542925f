"""Chromium viewers' picture quality from canvas samples (about one a second): a real
Chromium scenario gets PSNR/SSIM like an aiortc one, and on one stream the canvas scores
the frames it sampled as an aiortc viewer scores the same frames (same seqs).

Starts servers and headless Chromium (about 20 s); alone, under the shared lock:
``flock /tmp/streamlab-heavy.lock .venv/bin/pytest -q tests/test_quality_chromium.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamlab.experiments import measure
from streamlab.experiments.processes import HOSTS, Child
from streamlab.experiments.runner import run_one
from streamlab.experiments.scenario import Scenario
from streamlab.quality.canvas import rgb_to_i420
from streamlab.testing import CHROMIUM

needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")


def test_the_inverse_of_the_browsers_matrix_gives_the_planes_back() -> None:
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)  # saturated colours, 16 px
    bgr = cv2.resize(blocks, (128, 96), interpolation=cv2.INTER_NEAREST)
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # BT.601, video range
    shown = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)  # what a browser draws from it
    back = rgb_to_i420(shown, "smpte170m")
    assert np.abs(back[:96].astype(int) - yuv[:96]).max() <= 1
    assert np.abs(rgb_to_i420(shown).astype(int) - back).max() == 0  # unknown: BT.601
    as_709 = rgb_to_i420(shown, "bt709")
    assert np.abs(as_709[:96].astype(int) - yuv[:96]).mean() > 2  # the wrong matrix shows


@pytest.mark.browser
@needs_chromium
def test_a_chromium_scenario_gets_quality_figures_from_canvas_samples() -> None:
    scenario = Scenario.from_table({
        "name": "chromium-quality", "source": "synthetic://?size=640x360&fps=30",
        "viewer": "chromium", "warmup_s": 1, "duration_s": 3,
    })  # fmt: skip
    run = run_one(scenario)
    assert not run.error, run.error
    figures = run.metrics
    assert 25 <= figures["psnr_y_mean_db"] <= 48, figures
    assert figures["psnr_y_p5_db"] <= figures["psnr_y_mean_db"]
    assert 0 < figures["ssim_y_mean"] <= 1 and figures["psnr_yuv_mean_db"] > 0
    assert 2 <= figures["quality_frames"] <= figures["canvas_samples"]
    assert 0 < figures["quality_sampled"] < 0.5  # a sample a second of ~30 frames a second
    assert figures["canvas_samples_per_s"] > 0 and figures["canvas_grab_ms"] > 0


@pytest.mark.browser
@needs_chromium
async def test_the_canvas_scores_a_frame_as_an_aiortc_viewer_does(tmp_path: Path) -> None:
    # H.264: the stream says BT.601 (as the pictures are); Chromium, told nothing, would
    # show it by BT.709 and the canvas would need that matrix
    command = [*HOSTS, "serve", "--source", "synthetic://?size=640x360&fps=30",
               "--settings", json.dumps({"codec": "h264"}), "--reference", str(tmp_path)]  # fmt: skip
    with Child(command, what="server") as child:
        base = await asyncio.to_thread(child.ready, "viewer:", 40.0)
        aiortc = measure.AiortcViewer(f"{base}whep/cam", reference=str(tmp_path))
        pages = measure.ChromiumViewers(base, 1, reference=str(tmp_path))
        try:
            await aiortc.connect()
            await pages.start()
            for _ in range(4):
                await asyncio.sleep(0.7)
                await pages.sample()
            await asyncio.sleep(0.7)  # the last grab, and aiortc past its frames
        finally:
            await pages.close()
            await aiortc.close()
    samples = pages.canvases[0].samples
    assert {(s.width, s.height, s.matrix) for s in samples} == {(640, 360, "smpte170m")}
    canvas = {q.seq: q.psnr_y for q in pages.logs[0].quality}
    received = {q.seq: q.psnr_y for q in aiortc.log.quality}
    same = sorted(set(canvas) & set(received))
    assert len(same) >= 2, (sorted(canvas), len(received))
    differences = [canvas[seq] - received[seq] for seq in same]
    assert max(abs(d) for d in differences) <= 0.5, differences  # measured here: within 0.04 dB
