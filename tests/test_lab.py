"""The notebook layer on a real running pipeline: control panel, live preview."""

from __future__ import annotations

import asyncio

import streamlab as sl
from streamlab.lab.panel import ControlPanel
from streamlab.lab.preview import LivePreview


async def test_panel_changes_reach_the_running_pipeline() -> None:
    pipeline = sl.Pipeline(
        "synthetic://?size=320x240&fps=30", config=sl.load_config(analyze=["motion"])
    )
    async with pipeline:
        panel = ControlPanel(pipeline)
        assert set(panel.controls) >= {"buffering", "skipping", "quality", "codec", "target_fps"}
        assert "every_nth" in panel.controls["skipping"].options
        assert "motion" in panel.detectors.options
        panel.controls["skipping"].value = "every_nth:4"  # as if typed in the combobox
        panel.controls["buffering"].value = "drop_oldest:2"
        panel.detectors.value = ("motion", "faces")
        await asyncio.sleep(0.5)
        await panel.stop()
        assert pipeline.config.skipping == "every_nth:4"
        assert pipeline.config.buffering == "drop_oldest:2"
        assert pipeline.config.analyze == ["motion", "faces"]
        assert "applied" in panel.status.value
        stats = panel.refresh_stats()
        assert stats["skipping"] == "every_nth:4"
        assert "frames_out" in panel.stats_view.value


async def test_panel_shows_a_bad_value_and_changes_nothing() -> None:
    pipeline = sl.Pipeline("synthetic://?size=320x240&fps=30")
    async with pipeline:
        panel = ControlPanel(pipeline)
        assert not await panel.apply(skipping="every_nth:0")
        assert not await panel.apply(target_fps=99)
        assert pipeline.config.skipping == "none"
        assert pipeline.config.target_fps == 10
        assert "between 1 and 30" in panel.status.value
        assert len(panel.errors) == 2


async def test_preview_shows_jpeg_frames_without_slowing_the_stream() -> None:
    pipeline = sl.Pipeline("synthetic://?size=320x240&fps=30")
    async with pipeline:
        preview = LivePreview(pipeline, fps=10)
        preview.start()
        tap = pipeline.tap(maxsize=100)
        frames = [await asyncio.wait_for(tap.get(), 5) for _ in range(30)]
        await preview.stop()
    assert preview.shown >= 3
    assert preview.widget.value[:2] == b"\xff\xd8"  # a JPEG
    assert frames[-1].seq - frames[0].seq == 29
