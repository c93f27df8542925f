"""A/V sync: the test camera's marks and clicks, the sender reports' clock, the pairing of
clicks with marks, and the offset real headless Chromium shows (``av_sync_ms``)."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest

import streamlab as sl
from streamlab.errors import ConfigError
from streamlab.experiments.av_sync import DETECTABLE_MS, DRAIN, PROBE, pair_offsets, summary
from streamlab.testing import served_by_cli
from streamlab.webrtc import sender_reports

AUDIO_CODEC = """async () => {
  const report = await window.streamlab.pc.getStats();
  let audio = null; const mimes = {};
  report.forEach(s => { if (s.type === "inbound-rtp" && s.kind === "audio") audio = s;
                        if (s.type === "codec") mimes[s.id] = s.mimeType; });
  return audio ? mimes[audio.codecId] : null;
}"""


def test_each_click_pairs_with_its_nearest_mark_and_strays_are_left_out() -> None:
    marks = [1000.0, 2000.0, 3000.0]
    clicks = [1040.0, 1990.0, 3300.0, 5000.0]  # 5000: its flash was never shown
    assert pair_offsets(clicks, marks) == [(1040.0, 40.0), (1990.0, -10.0), (3300.0, 300.0)]
    assert pair_offsets(clicks, []) == []
    figures = summary([40.0, -10.0, 300.0])
    assert figures["av_sync_ms"] == 40.0 and figures["av_sync_pairs"] == 3
    assert figures["av_sync_detectable_pct"] == pytest.approx(33.3, abs=0.1)  # 300 ms late
    assert summary([])["av_sync_ms"] is None


def test_the_cameras_audio_lands_on_the_ticks_of_the_picture_taken_with_it() -> None:
    from streamlab.delivery.audio import AudioTimeline
    from streamlab.delivery.clock import RATE, MediaClock
    from streamlab.sources.audio import AudioFormat, AudioUnit

    clock = MediaClock("arrival")
    t0 = 1_700_000_000.0
    clock.ticks(t0)  # tick 0: the camera's time 0, as it happened
    delays = [0.060, 0.045, 0.080, 0.040, 0.052] * 4  # the least-delayed frame: 40 ms
    for k, delay in enumerate(delays):  # 20 frames: camera time k/30 s, arrival later
        clock.ticks(t0 + k / 30 + delay, k * 3000, Fraction(1, RATE))
    assert clock.camera_offset() == round(0.040 * RATE)  # ours = camera + 40 ms
    pcma = AudioFormat("pcm_alaw", 8000, 1)
    timeline = AudioTimeline(clock, 8000)
    unit = AudioUnit(bytes(160), pcma, 8000 * 10 // 30, Fraction(1, 8000), 1)  # frame 10's time
    ticks = timeline.ticks(unit, t0 + 10 / 30 + 0.5)  # however late the packet came
    assert timeline.by_video
    camera = round(unit.pts * RATE / 8000)  # frame 10's time, to the sample
    assert ticks == (camera + round(0.040 * RATE)) * 8000 // RATE
    later = AudioUnit(bytes(160), pcma, 8000 * 10 // 30 + 160, Fraction(1, 8000), 1)
    assert timeline.ticks(later, t0 + 10 / 30 + 0.3) == ticks + 160, "by its own timestamps"


def test_audio_waits_for_the_videos_offset_at_most_a_second_then_goes_by_arrival() -> None:
    from streamlab.delivery.audio import HOLD_FOR_VIDEO_S, AudioTimeline
    from streamlab.delivery.clock import RATE, MediaClock
    from streamlab.sources.audio import AudioFormat, AudioUnit

    pcma = AudioFormat("pcm_alaw", 8000, 1)
    t0 = 1_700_000_000.0

    def unit(k: int, connection: int = 1) -> AudioUnit:
        return AudioUnit(bytes(160), pcma, 160 * k, Fraction(1, 8000), connection)

    clock = MediaClock("arrival")
    clock.ticks(t0)
    timeline = AudioTimeline(clock, 8000)
    assert timeline.ticks(unit(0), t0 + 0.02) is None, "held: the video has no offset yet"
    for k in range(1, 12):
        clock.ticks(t0 + k / 30 + 0.01, k * 3000, Fraction(1, RATE))
    ticks = timeline.ticks(unit(1), t0 + 0.04)
    assert timeline.by_video and ticks == 160 + round(0.01 * 8000) and timeline.held == 1

    lone = MediaClock("arrival")  # a video that never tells its offset
    lone.ticks(t0)
    late = AudioTimeline(lone, 8000)
    assert late.ticks(unit(0), t0 + 0.02) is None
    after = t0 + 0.02 + HOLD_FOR_VIDEO_S
    assert late.ticks(unit(50), after) == round((after - t0 - 0.02) * 8000), "arrival less 20 ms"
    assert not late.by_video


def test_lip_sync_lets_a_viewer_with_audio_be_held_for_the_sound() -> None:
    from streamlab.delivery.playout import LIP_SYNC_MAX_MS, PlayoutDelay
    from streamlab.delivery.settings import playout_of

    delivery = SimpleNamespace(playout_spec="0", lip_sync=True,
                               audio=SimpleNamespace(tracks={"with-audio": object()}))  # fmt: skip
    hears = SimpleNamespace(id="with-audio", playout_override=None)
    silent = SimpleNamespace(id="video-only", playout_override=None)
    assert playout_of(delivery, hears) == PlayoutDelay(0, LIP_SYNC_MAX_MS)  # type: ignore[arg-type]
    assert playout_of(delivery, silent) == PlayoutDelay(0, 0)  # type: ignore[arg-type]
    delivery.lip_sync = False
    assert playout_of(delivery, hears) == PlayoutDelay(0, 0)  # type: ignore[arg-type]
    delivery.playout_spec = "browser"
    delivery.lip_sync = True
    assert playout_of(delivery, hears) is None  # no hint: the browser syncs anyway  # type: ignore[arg-type]


def test_sender_reports_map_rtp_time_to_capture_time() -> None:
    async def build() -> Any:
        from aiortc import RTCRtpSender

        return RTCRtpSender("audio", SimpleNamespace(state="new"))

    sender = asyncio.run(build())
    track = SimpleNamespace(last_sent=(8000, Fraction(1, 8000)))  # 1 s after tick 0
    sender._RTCRtpSender__track = track
    origin = 1_700_000_000.0
    sender_reports.capture_clock(sender, lambda: origin)
    sender._RTCRtpSender__ntp_timestamp = sender_reports.ntp64(time.time())  # aiortc: sent now
    sender._RTCRtpSender__rtp_timestamp = 123_456
    assert sender._RTCRtpSender__rtp_timestamp == 123_456
    assert sender._RTCRtpSender__ntp_timestamp == sender_reports.ntp64(origin + 1.0)
    sender_reports.release(sender)  # the clock is forgotten: aiortc's send time again
    sent = sender_reports.ntp64(time.time())
    sender._RTCRtpSender__ntp_timestamp = sent
    sender._RTCRtpSender__rtp_timestamp = 123_999
    assert sender._RTCRtpSender__ntp_timestamp == sent


def test_a_sync_camera_needs_audio_and_the_synthetic_source() -> None:
    with pytest.raises(ConfigError, match="sync"):
        sl.TestCamera(wave="sync")
    with pytest.raises(ConfigError, match="sync"):
        sl.TestCamera(audio="pcma", wave="sync", source="/nonexistent.mp4")


def _marks_and_clicks(url: str, seconds: float) -> tuple[list[float], list[float]]:
    """Mark onsets and click onsets (camera seconds) as FFmpeg's RTSP demuxer times them."""
    marks, clicks, lit, loud = [], [], False, False
    with av.open(url, options={"rtsp_transport": "tcp"}) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        end = time.monotonic() + seconds
        for packet in container.demux(video, audio):
            if time.monotonic() > end:
                break
            for frame in packet.decode():
                if packet.stream is video:
                    grey = frame.to_ndarray(format="gray")
                    size = grey.shape[0] // 8
                    y, x = grey.shape[0] - size - size // 2, grey.shape[1] - size - size // 2
                    on = grey[y + size // 4 : y + 3 * size // 4, x + size // 4 : x + 3 * size // 4].mean() > 128
                    if on and not lit:
                        marks.append(float(frame.pts * frame.time_base))
                    lit = on
                else:
                    samples = frame.to_ndarray().astype(float).ravel() / 32768
                    above = np.nonzero(np.abs(samples) > 0.1)[0]
                    if len(above) and not loud:
                        clicks.append(float(frame.pts * frame.time_base) + above[0] / frame.sample_rate)
                    loud = len(above) > 0
    return marks, clicks


def test_the_sync_camera_clicks_at_its_marked_frames_own_time(camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(audio="pcma", wave="sync", size=(320, 240), fps=15)
    marks, clicks = _marks_and_clicks(camera.url, 4.5)
    pairs = pair_offsets([c * 1000 for c in clicks], [m * 1000 for m in marks])
    print(f"camera marks {marks}, clicks {clicks}")
    assert len(pairs) >= 3, "a mark and a click every second"
    assert all(abs(offset) <= 3 for _, offset in pairs), "sample-exact at the camera"
    gaps = np.diff(marks)
    assert np.all(np.abs(gaps - 1.0) < 0.1), "one mark a second"


@pytest.mark.browser
def test_chromium_shows_an_aac_cameras_click_within_the_bt1359_window_of_its_flash(
    chromium_browser: Any, camera_factory: Any
) -> None:
    """The harder case: AAC decoded and re-encoded as Opus (the transcode and the browser's
    Opus buffer put the sound 140-170 ms behind a latency-first picture); with ``lip_sync``
    (the default) Chromium holds the video for it."""
    camera = camera_factory(audio="aac", wave="sync", size=(480, 272), fps=30)
    with served_by_cli("--source", camera.url, "--name", "cam") as url:
        context = chromium_browser.new_context()
        context.add_init_script(PROBE)
        try:
            page = context.new_page()
            page.goto(url + "?stream=cam")
            clicks: list[float] = []
            marks: list[float] = []
            deadline = time.monotonic() + 60
            while len(clicks) < 26 and time.monotonic() < deadline:
                page.wait_for_timeout(1000)
                out = page.evaluate(DRAIN)
                clicks += out["clicks"]
                marks += out["marks"]
            mime = page.evaluate(AUDIO_CODEC)
        finally:
            context.close()
    assert mime == "audio/opus", "AAC reaches the browser as Opus"
    pairs = pair_offsets(clicks, marks)
    settled = [offset for _, offset in pairs[-6:]]  # Chromium's sync moves a step a second
    print(f"state {out['state']}, offsets {[o for _, o in pairs]}")
    assert len(pairs) >= 20, f"clicks {len(clicks)}, marks {len(marks)}, pairs {len(pairs)}"
    low, high = DETECTABLE_MS
    assert low <= float(np.median(settled)) <= high
