"""Measurement truth: the pair a run saves (``save_video``) scores, read back and scored
independently, as the run's JSON says; VMAF on it when imageio-ffmpeg is installed.

The run starts a server process and one aiortc viewer (about 15 s); alone:
``.venv/bin/pytest tests/test_quality_saved_pair.py``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import av
import numpy as np
import pytest

from streamlab import framecode
from streamlab.errors import ConfigError
from streamlab.experiments import results
from streamlab.experiments.runner import run_one
from streamlab.experiments.scenario import Scenario
from streamlab.quality.pair import RECEIVED, REFERENCE, PairWriter


def frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video file as I420 planes."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]


def psnr_y(received: np.ndarray, reference: np.ndarray) -> float:
    """PSNR of Y with the frame-code box left out, capped at 48 dB (numpy, float64)."""
    height, width = reference.shape[0] * 2 // 3, reference.shape[1]
    _, _, box_w, box_h = framecode.region(width)
    keep = np.ones((height, width), dtype=bool)
    keep[:box_h, :box_w] = False
    diff = received[:height].astype(np.float64) - reference[:height].astype(np.float64)
    mse = float(np.mean(diff[keep] ** 2))
    return 48.0 if mse == 0 else min(48.0, 10 * np.log10(255.0**2 / mse))


def test_the_saved_pair_scores_as_the_json_says(tmp_path: Path) -> None:
    scenario = Scenario.from_table({
        "name": "saved-pair", "source": "synthetic://?size=640x360&fps=30",
        "quality": "fixed:480x270", "warmup_s": 1, "duration_s": 2, "save_video": True,
    })  # fmt: skip
    run = run_one(scenario)
    assert not run.error, run.error
    path = results.write([run], tmp_path / "pair.json")
    extra = json.loads(path.read_text())["benchmarks"][0]["extra_info"]
    folder = tmp_path / extra["video_dir"]
    assert folder.is_dir() and folder.is_relative_to(tmp_path / "pair.videos")

    received, reference = frames(folder / RECEIVED), frames(folder / REFERENCE)
    assert len(received) == len(reference) == extra["video_frames"] == extra["quality_frames"]
    assert len(received) >= 30 and extra["video_dropped"] == 0
    # both at the reference's size: the 480x270 rung was scaled up to the 640x360 source
    assert {f.shape for f in received} == {f.shape for f in reference} == {(540, 640)}
    for got, want in zip(received, reference, strict=True):  # frame n shows source frame n
        code_got, code_want = framecode.try_read(got[:360]), framecode.try_read(want[:360])
        assert code_got is not None and code_want is not None
        assert code_got.seq == code_want.seq
    independent = float(np.mean([psnr_y(g, r) for g, r in zip(received, reference, strict=True)]))
    assert abs(independent - extra["psnr_y_mean_db"]) <= 0.2, (independent, extra["psnr_y_mean_db"])

    if importlib.util.find_spec("imageio_ffmpeg") is None:
        assert "vmaf_mean" not in extra
    else:
        assert 20 <= extra["vmaf_mean"] <= 100
        assert (folder / "vmaf.json").is_file()


def test_the_writer_keeps_the_window_at_most_max_frames_losslessly(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 256, (72, 64), dtype=np.uint8) for _ in range(12)]
    writer = PairWriter(tmp_path, max_frames=3)
    writer.offer(5.0, pictures[0], pictures[1])  # before the window opens: not kept
    writer.open_window(10.0)
    for index in range(5):
        writer.offer(10.0 + index, pictures[2 + 2 * index], pictures[3 + 2 * index])
    writer.close_window(20.0)
    writer.offer(20.0, pictures[0], pictures[1])  # at the window's end: not kept
    writer.close()
    assert (writer.stats.written, writer.stats.beyond, writer.stats.dropped) == (3, 2, 0)
    assert not writer.error
    received, reference = frames(tmp_path / RECEIVED), frames(tmp_path / REFERENCE)
    for index in range(3):
        assert np.array_equal(received[index], pictures[2 + 2 * index])
        assert np.array_equal(reference[index], pictures[3 + 2 * index])
    assert len(received) == len(reference) == 3


@pytest.mark.parametrize("conflict", [
    {"measure_quality": False}, {"viewer": "chromium"}, {"codec": "passthrough"},
    {"baseline": "pyav", "source": "camera:320x240@15"},
])  # fmt: skip
def test_save_video_where_nothing_is_scored_is_one_config_error(conflict: dict) -> None:
    table = {"name": "x", "source": "synthetic://", "save_video": True, **conflict}
    with pytest.raises(ConfigError, match="save_video needs scored frames"):
        Scenario.from_table(table)


@pytest.mark.parametrize("tapped", [{"codec": "passthrough"}, {"baseline": "restreamer"}])
def test_save_video_of_a_tapped_camera_run_is_accepted(tapped: dict) -> None:
    """Passthrough and the restreamer are scored against a reference tap of the camera."""
    Scenario.from_table({"name": "x", "source": "camera:320x240@15", "save_video": True,
                         **tapped})  # fmt: skip


@pytest.mark.rtsp
@pytest.mark.parametrize("tapped", [{"baseline": "restreamer"}, {"codec": "passthrough"}])
def test_the_restreamer_and_passthrough_are_scored_against_a_tap_of_the_camera(
    tapped: dict,
) -> None:
    """Neither decodes what the viewer gets from streamlab's pipeline, so a reference tap (the
    camera decoded by a process of its own, keyed by the camera's frame codes) scores them."""
    scenario = Scenario.from_table({"name": "tapped", "source": "camera:320x240@15",
                                    "warmup_s": 1, "duration_s": 2, **tapped})  # fmt: skip
    run = run_one(scenario)
    assert not run.error, run.error
    assert run.metrics.get("quality_frames", 0) >= 15, run.metrics
    assert 28 < run.metrics["psnr_y_mean_db"] <= 48, run.metrics
