"""Each skipping strategy's decisions on a scripted sequence of frames."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import streamlab as sl
from streamlab.strategies.skipping import AnalysisState, skipping, skipping_from_config

IMAGE = np.zeros((2, 2, 3), np.uint8)
ALL = ("motion", "people")


def frame(seq: int, at: float) -> sl.Frame:
    return sl.Frame(IMAGE, seq, seq, Fraction(1, 30), at)


def script(
    spec: str, frames: int = 12, fps: float = 30.0, **state: object
) -> list[tuple[str, ...]]:
    """Feed frames at ``fps``; every submitted frame is analysed instantly."""
    strategy = skipping.create(spec)
    analysis = AnalysisState(**state)  # type: ignore[arg-type]
    decisions = []
    for seq in range(frames):
        f = frame(seq, 1000.0 + seq / fps)
        chosen = strategy.select(f, analysis, ALL)
        decisions.append(chosen)
        if chosen:
            analysis.last_submitted_seq, analysis.last_submitted_at = seq, f.captured_at
    return decisions


def analysed(decisions: list[tuple[str, ...]]) -> list[int]:
    return [i for i, d in enumerate(decisions) if d]


def test_none_analyses_every_frame() -> None:
    assert analysed(script("none")) == list(range(12))


def test_every_nth() -> None:
    assert analysed(script("every_nth:3")) == [0, 3, 6, 9]
    assert analysed(script("every_nth:1")) == list(range(12))


def test_target_fps_by_capture_time() -> None:
    assert analysed(script("target_fps:10", frames=13, fps=30)) == [0, 3, 6, 9, 12]
    assert analysed(script("target_fps:30", frames=5, fps=30)) == [0, 1, 2, 3, 4]


def test_adaptive_skips_while_analysis_is_in_flight_or_over_budget() -> None:
    strategy = skipping.create("adaptive:100")
    state = AnalysisState(in_flight=1)
    assert strategy.select(frame(0, 0.0), state, ALL) == ()
    state.in_flight = 0
    assert strategy.select(frame(1, 0.0), state, ALL) == ALL
    state.lag_s, state.last_submitted_seq = 0.5, 1
    assert strategy.select(frame(2, 0.0), state, ALL) == ()
    assert strategy.select(frame(3, 0.0), state, ALL) == ALL
    state.lag_s = 0.05
    assert strategy.select(frame(4, 0.0), state, ALL) == ALL


def test_motion_gated_runs_expensive_detectors_only_after_motion() -> None:
    strategy = skipping.create("motion_gated")
    state = AnalysisState()
    assert strategy.select(frame(0, 0), state, ALL) == ("motion",)
    state.motion_seen = True
    assert strategy.select(frame(1, 0), state, ALL) == ("motion", "people")
    assert strategy.select(frame(2, 0), state, ("people",)) == ("motion", "people")


def test_intervals_express_the_seed_schedule() -> None:
    decisions = script("intervals:3,6", frames=13)
    assert {i: d for i, d in enumerate(decisions) if d} == {
        0: ("motion", "people"), 3: ("motion",), 6: ("motion", "people"), 9: ("motion",),
        12: ("motion", "people"),
    }  # fmt: skip


def test_defaults_come_from_the_config() -> None:
    config = sl.load_config(skipping="intervals", analysis_frame_interval=10,
                            detection_frame_interval=40)  # fmt: skip
    assert skipping_from_config(config).name == "intervals:10,40"
    assert (
        skipping_from_config(sl.load_config(skipping="every_nth", frame_skip_interval=7)).name
        == "every_nth:7"
    )
    assert (
        skipping_from_config(sl.load_config(skipping="target_fps", target_fps=3)).name
        == "target_fps:3"
    )


@pytest.mark.parametrize("spec", ["every_nth:0", "target_fps:0", "adaptive:-5", "sometimes"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(sl.ConfigError):
        skipping.create(spec)
