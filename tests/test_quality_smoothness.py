"""Freezes, pauses, harmonic frame rate and seq-based drops by the standard definitions."""

from __future__ import annotations

import pytest

from streamlab.quality.smoothness import SEQ_MODULUS, Shown, harmonic_fps, smoothness, unwrap

PERIOD = 1000 / 30


def steady(count: int, *, start_ms: float = 0.0, first_seq: int = 0) -> list[Shown]:
    return [Shown(start_ms + i * PERIOD, first_seq + i, 640, 480) for i in range(count)]


def with_gap(gap_ms: float) -> list[Shown]:
    """10 s at 30 fps, one gap of ``gap_ms`` (the source's frames in it never shown), 3 s more."""
    before = steady(300)
    resume = before[-1].at_ms + gap_ms
    lost = round(gap_ms / PERIOD) - 1
    after = steady(90, start_ms=resume, first_seq=before[-1].seq + 1 + lost)  # type: ignore[operator]
    return before + after


def test_a_2_s_stall_is_one_freeze_of_2_s_and_no_pause() -> None:
    result = smoothness(with_gap(2000.0))
    assert result.freeze_count == 1
    assert result.freeze_total_ms == pytest.approx(2000.0)
    assert result.pause_count == 0
    assert result.pause_total_ms == 0.0
    assert result.frames_dropped == round(2000 / PERIOD) - 1
    assert result.max_skipped == result.frames_dropped


def test_a_6_s_gap_is_one_pause_and_no_freeze() -> None:
    result = smoothness(with_gap(6000.0))
    assert result.pause_count == 1
    assert result.pause_total_ms == pytest.approx(6000.0)
    assert result.freeze_count == 0


def test_the_threshold_is_max_of_3_avg_and_avg_plus_150() -> None:
    # at 30 fps the average is 33 ms: avg + 150 (183) is the larger; a gap just below
    # is not a freeze, just above is (the gap enters the average first, as libwebrtc does)
    below = smoothness(with_gap(185.0))
    above = smoothness(with_gap(200.0))
    assert below.freeze_count == 0
    assert above.freeze_count == 1
    # at 2 fps the average is 500 ms: 3 x avg (1500) is the larger
    slow = [Shown(i * 500.0, i, 640, 480) for i in range(20)]
    slow_then_1400 = [*slow, Shown(slow[-1].at_ms + 1400, 20, 640, 480)]
    slow_then_1700 = [*slow, Shown(slow[-1].at_ms + 1700, 20, 640, 480)]
    assert smoothness(slow_then_1400).freeze_count == 0
    assert smoothness(slow_then_1700).freeze_count == 1


def test_no_freeze_before_5_intervals_are_known() -> None:
    frames = [*steady(4), Shown(4 * PERIOD + 1000, 4, 640, 480)]
    assert smoothness(frames).freeze_count == 0
    frames = [*steady(5), Shown(4 * PERIOD + 1000, 5, 640, 480)]
    assert smoothness(frames).freeze_count == 1


def test_jitter_around_the_average_is_not_a_freeze() -> None:
    at, frames = 0.0, []
    for i in range(300):
        at += 20.0 if i % 2 else 46.0
        frames.append(Shown(at, i, 640, 480))
    assert smoothness(frames).freeze_count == 0


def test_time_between_freezes_is_the_mean_smooth_stretch() -> None:
    frames = with_gap(2000.0)
    result = smoothness(frames)
    before = frames[299].at_ms - frames[0].at_ms
    after = frames[-1].at_ms - frames[300].at_ms
    assert result.time_between_freezes_mean_ms == pytest.approx((before + after) / 2)


def test_harmonic_fps_of_a_steady_series_is_its_rate() -> None:
    assert smoothness(steady(300)).harmonic_fps == pytest.approx(30.0)
    assert harmonic_fps([0.0]) is None


def test_harmonic_fps_penalises_a_freeze_more_than_the_mean_rate() -> None:
    frames = with_gap(2000.0)
    mean_fps = (len(frames) - 1) / ((frames[-1].at_ms - frames[0].at_ms) / 1000)
    result = smoothness(frames)
    assert result.harmonic_fps is not None and result.harmonic_fps < mean_fps - 5


def test_repeated_and_skipped_seqs() -> None:
    seqs = [0, 1, 2, 2, 3, 6, 7, 7, 7, 8]
    frames = [Shown(i * PERIOD, s, 640, 480) for i, s in enumerate(seqs)]
    result = smoothness(frames)
    assert result.frames_repeated == 3
    assert result.frames_dropped == 2  # 4 and 5
    assert result.max_skipped == 2
    assert result.source_frames_span == 9
    assert result.seqs_read == 10


def test_only_offered_seqs_count_as_dropped() -> None:
    # a rung at half the source's rate shows every other seq
    frames = [Shown(i * 2 * PERIOD, 2 * i, 640, 480) for i in range(50)]
    assert smoothness(frames).frames_dropped == 49
    assert smoothness(frames).max_skipped == 1
    offered_even = range(0, 200, 2)
    result = smoothness(frames, offered=offered_even)
    assert result.frames_dropped == 0
    assert result.max_skipped == 0
    assert result.source_frames_span == 99
    missing_one = [s for s in offered_even if s != 40]
    shown_without_40 = [f for f in frames if f.seq != 40]
    assert smoothness(shown_without_40, offered=missing_one).frames_dropped == 0
    assert smoothness(shown_without_40, offered=offered_even).frames_dropped == 1


def test_unread_codes_count_for_timing_not_for_seqs() -> None:
    frames = [Shown(f.at_ms, None if i % 3 == 0 else f.seq, 640, 480)
              for i, f in enumerate(steady(30))]  # fmt: skip
    result = smoothness(frames)
    assert result.frames == 30 and result.seqs_read == 20
    assert smoothness([Shown(0.0, None, 640, 480)]).frames_dropped is None


def test_seqs_wrap_at_2_24() -> None:
    seqs = [SEQ_MODULUS - 2, SEQ_MODULUS - 1, 0, 2]
    assert unwrap(seqs) == [SEQ_MODULUS - 2, SEQ_MODULUS - 1, SEQ_MODULUS, SEQ_MODULUS + 2]
    frames = [Shown(i * PERIOD, s, 640, 480) for i, s in enumerate(seqs)]
    result = smoothness(frames, offered=[SEQ_MODULUS - 2, SEQ_MODULUS - 1, 0, 1, 2])
    assert result.frames_dropped == 1 and result.source_frames_span == 5


def test_resolution_switches() -> None:
    sizes = [(640, 480)] * 3 + [(320, 240)] * 3 + [(640, 480)] * 2
    frames = [Shown(i * PERIOD, i, w, h) for i, (w, h) in enumerate(sizes)]
    assert smoothness(frames).resolution_switches == 2


def test_to_dict_has_every_figure() -> None:
    data = smoothness(steady(10)).to_dict()
    assert data["freeze_count"] == 0 and data["harmonic_fps"] == 30.0
    assert set(data) >= {"pause_count", "frames_dropped", "frames_repeated", "resolution_switches"}
