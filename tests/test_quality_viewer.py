"""End to end: a served stream keeps its reference, an aiortc viewer scores what it shows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from streamlab.experiments import measure
from streamlab.experiments.processes import HOSTS, Child
from streamlab.quality.reference import ReferenceReader
from streamlab.quality.summary import smoothness_figures


async def test_the_viewer_scores_every_frame_against_the_servers_reference(
    tmp_path: Path,
) -> None:
    settings = json.dumps({"quality": "fixed:480x270"})
    command = [*HOSTS, "serve", "--source", "synthetic://?size=640x360&fps=30",
               "--settings", settings, "--reference", str(tmp_path)]  # fmt: skip
    with Child(command, what="server") as child:
        base = await asyncio.to_thread(child.ready, "viewer:", 40.0)
        viewer = measure.AiortcViewer(f"{base}whep/cam", reference=str(tmp_path))
        await viewer.connect()
        try:
            await viewer.wait_frames(90, 30.0)
        finally:
            await viewer.close()
        with ReferenceReader(tmp_path) as reader:
            offered = reader.offered().tolist()
    assert viewer.scorer is not None
    stats = viewer.scorer.stats
    log = viewer.log
    coded = [f for f in log.shown if f.seq is not None]
    assert len(coded) >= 85
    assert stats.scored + stats.skipped + stats.unmatched == stats.submitted == len(coded)
    assert stats.unmatched == 0
    assert len(log.quality) == stats.scored >= len(coded) // 2
    assert {(q.width, q.height) for q in log.quality} == {(480, 270)}
    psnrs = [q.psnr_y for q in log.quality]
    assert min(psnrs) > 25 and max(psnrs) < 48  # scaled up from 480x270: never perfect
    assert all(0.3 < q.ssim_y < 1 for q in log.quality)
    assert set(f.seq for f in coded) <= set(offered)
    figures = smoothness_figures([log.shown], offered)
    assert figures["frames_repeated"] == 0 and figures["resolution_switches"] == 0
