"""The notebook layer on a real running pipeline: control panel and acknowledged preview."""

from __future__ import annotations

import asyncio
from typing import Any

import streamlab as sl
from streamlab.lab.panel import ControlPanel
from streamlab.lab.preview import Preview
from streamlab.testing import until

SOURCE = "synthetic://?size=320x240&fps=30"


async def test_panel_changes_reach_the_running_pipeline() -> None:
    pipeline = sl.Pipeline(SOURCE, config=sl.load_config(analyze=["motion"]))
    async with pipeline:
        panel = ControlPanel(pipeline)
        assert set(panel.controls) >= {"buffering", "skipping", "quality", "codec", "target_fps",
                                       "overlay", "analyze"}  # fmt: skip
        assert "every_nth" in panel.controls["skipping"].options
        assert "motion" in panel.detectors.options
        panel.controls["skipping"].value = "every_nth:4"  # as if typed in the combobox
        panel.controls["buffering"].value = "drop_oldest:2"
        panel.detectors.value = ("motion", "faces")
        panel.controls["overlay"].value = True
        assert panel.controls["rtp_clock"].options == ("arrival", "camera")
        panel.controls["rtp_clock"].value = "camera"
        panel.controls["playout_delay"].value = "0-1000"
        await until(lambda: (pipeline.config.skipping, pipeline.config.buffering,
                             pipeline.config.analyze, pipeline.config.overlay,
                             pipeline.config.rtp_clock, pipeline.config.playout_delay)
                    == ("every_nth:4", "drop_oldest:2", ["motion", "faces"], True, "camera",
                        "0-1000") and "applied" in panel.status.value,
                    0.5, "the panel's changes applied")  # fmt: skip
        await panel.stop()
        assert pipeline.config.skipping == "every_nth:4"
        assert pipeline.config.buffering == "drop_oldest:2"
        assert pipeline.config.analyze == ["motion", "faces"]
        assert pipeline.config.overlay is True
        assert (pipeline.config.rtp_clock, pipeline.config.playout_delay) == ("camera", "0-1000")
        assert "applied" in panel.status.value
        stats = panel.refresh_stats()
        assert stats["skipping"] == "every_nth:4"
        assert "frames_out" in panel.stats_view.value


async def test_a_rejected_value_snaps_back_and_shows_its_error() -> None:
    pipeline = sl.Pipeline(SOURCE)
    async with pipeline:
        panel = ControlPanel(pipeline)
        panel.controls["target_fps"].value = 25
        await until(lambda: pipeline.config.target_fps == 25, 0.3, "target_fps applied")
        panel.controls["skipping"].value = "every_nth:0"  # typed by the user: invalid
        await until(lambda: panel.controls["skipping"].value == "none" and len(panel.errors) == 1,
                    0.3, "the box snapped back with its error")  # fmt: skip
        assert pipeline.config.skipping == "none"
        assert panel.controls["skipping"].value == "none", "the box snaps back to the applied"
        assert not await panel.apply(target_fps=99)
        assert panel.controls["target_fps"].value == 25
        assert "between 1 and 30" in panel.status.value
        assert len(panel.errors) == 2
        assert all("\n" not in error for error in panel.errors)
        await panel.stop()


async def test_panel_follows_changes_made_elsewhere_and_shows_stopped() -> None:
    pipeline = sl.Pipeline(SOURCE)
    await pipeline.start()
    panel = ControlPanel(pipeline, stats_every_s=0.1)
    await pipeline.update(skipping="every_nth:3", buffering="block:4")  # from code, not the panel
    await until(lambda: (panel.controls["skipping"].value, panel.controls["buffering"].value)
                == ("every_nth:3", "block:4"), 0.2, "the panel follows")  # fmt: skip
    assert "running" in panel.state_view.value
    await pipeline.stop()
    await until(lambda: "stopped" in panel.state_view.value
                and all(control.disabled for control in panel.controls.values()),
                0.3, "the panel shows stopped")  # fmt: skip
    assert "stopped" in panel.state_view.value
    assert all(control.disabled for control in panel.controls.values())
    await panel.stop()


class Browser:
    """Records what the preview sends and answers as preview.js does (ack per frame)."""

    def __init__(self, preview: Preview, *, ack: bool) -> None:
        self.preview = preview
        self.ack = ack
        self.frames: list[tuple[dict[str, Any], bytes]] = []
        self._send = preview.send
        preview.send = self.receive  # type: ignore[method-assign]

    def receive(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        assert buffers is not None
        self.frames.append((content, bytes(buffers[0])))
        self._send(content, buffers=buffers)
        if self.ack:
            loop = asyncio.get_running_loop()
            reply = {"type": "ack", "index": content["index"], "shown": True}
            loop.call_later(0.01, self.preview._on_message, self.preview, reply, [])


async def test_preview_keeps_at_most_two_frames_in_flight() -> None:
    pipeline = sl.Pipeline(SOURCE)
    async with pipeline:
        preview = Preview(pipeline, fps=30)
        browser = Browser(preview, ack=False)
        await until(lambda: len(browser.frames) >= 2, 10, "two frames sent")
        await asyncio.sleep(0.5)  # 15 more source frames: none may go out unacknowledged
        assert len(browser.frames) == 2, "no acks: nothing beyond the two in flight"
        assert preview.stats()["in_flight"] == 2
        await preview.stop()


async def test_preview_sends_jpeg_at_the_source_rate_when_acknowledged() -> None:
    pipeline = sl.Pipeline(SOURCE)
    async with pipeline:
        preview = Preview(pipeline, fps=30, width=160)
        browser = Browser(preview, ack=True)
        await asyncio.sleep(2.0)
        stats = preview.stats()
        await preview.stop()
    assert 15 <= len(browser.frames) <= 64, stats  # at most 30 fps over 2 s, never more
    content, jpeg = browser.frames[-1]
    assert content["type"] == "frame" and jpeg[:2] == b"\xff\xd8"
    assert stats["max_in_flight"] <= 2
    assert stats["fps_shown"] >= 8
    assert stats["roundtrip_ms"] is not None
    seqs = [c["seq"] for c, _ in browser.frames]
    assert seqs == sorted(set(seqs)), "each frame once, in order"
    assert preview.state == "stopped"


async def test_preview_shows_stopped_when_the_pipeline_stops() -> None:
    pipeline = sl.Pipeline(SOURCE)
    await pipeline.start()
    preview = Preview(pipeline)
    Browser(preview, ack=True)
    await until(lambda: preview.state == "streaming", 0.4, "the preview streams")
    sent = preview.sent
    await pipeline.stop()
    await asyncio.sleep(0.6)
    assert preview.state == "stopped"
    assert preview.sent <= sent + 2
    await preview.stop()


async def test_preview_sends_nothing_while_no_view_is_on_screen() -> None:
    pipeline = sl.Pipeline(SOURCE)
    async with pipeline:
        preview = Preview(pipeline)
        browser = Browser(preview, ack=True)
        preview._on_message(preview, {"type": "visible", "view": "a", "value": False}, [])
        await asyncio.sleep(0.3)
        hidden = len(browser.frames)
        await asyncio.sleep(0.5)
        assert len(browser.frames) == hidden, "scrolled away: nothing sent"
        preview._on_message(preview, {"type": "visible", "view": "b", "value": True}, [])
        await asyncio.sleep(0.5)
        assert len(browser.frames) > hidden + 5
        await preview.stop()
