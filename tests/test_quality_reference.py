"""Reference frames on disk: written by a pipeline sink, read back by seq from any process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import streamlab as sl
from streamlab import framecode
from streamlab.analysis.detectors import register_detector
from streamlab.analysis.overlay import OTHER, yuv_colour
from streamlab.frame import Frame, bgr_to_i420
from streamlab.pipeline import Pipeline
from streamlab.quality.reference import (
    OFFERED,
    ReferenceReader,
    ReferenceWriter,
    _Ring,
    frame_bytes,
)
from streamlab.sources.synthetic import SyntheticScene

BOX = (200, 300, 80, 60)


def fixed_box(image: np.ndarray) -> list[sl.Detection]:
    return [sl.Detection("fixed", *BOX)]


register_detector("fixedbox", fixed_box)


def coded_frame(seq: int, width: int = 320, height: int = 240, value: int = 90) -> Frame:
    yuv = np.full((height * 3 // 2, width), value, dtype=np.uint8)
    framecode.burn_i420(yuv, seq, 1_000 + seq)
    return Frame.from_i420(yuv, seq, seq, Fraction(1, 90000), 0.0)


async def run_pipeline(
    url: str, writer: ReferenceWriter, count: int, config: sl.StreamingConfig | None = None
) -> list[Frame]:
    pipeline = Pipeline(url, config=config)
    pipeline.add_sink(writer)
    tap = pipeline.tap(maxsize=500)
    async with pipeline:
        frames = [await asyncio.wait_for(tap.get(), 10) for _ in range(count)]
    writer.close()
    return frames


READ_BACK = """
import json, sys
import numpy as np
from streamlab import framecode
from streamlab.frame import bgr_to_i420
from streamlab.quality.reference import ReferenceReader
from streamlab.sources.synthetic import SyntheticScene

scene = SyntheticScene(640, 480, objects=3, seed=0)
_, _, box_w, box_h = framecode.region(640)
with ReferenceReader(sys.argv[1]) as reader:
    offered = reader.offered().tolist()
    found = matched = 0
    for seq in offered:
        yuv = reader.get(seq)
        if yuv is None:
            continue
        found += 1
        y = yuv[:480]
        expected = bgr_to_i420(scene.render(seq)[0])[:480]
        same = framecode.read(y).seq == seq
        same = same and np.array_equal(y[box_h:], expected[box_h:])
        matched += bool(same)
print(json.dumps({"offered": offered, "found": found, "matched": matched}))
"""


async def test_a_pipelines_frames_read_back_by_seq_from_another_process(tmp_path: Path) -> None:
    writer = ReferenceWriter(tmp_path, slots=64)
    frames = await run_pipeline("synthetic://?size=640x480&fps=30", writer, 40)
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", READ_BACK, str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert writer.stats.written >= 40 and writer.stats.dropped == 0
    assert out["offered"][: len(frames)] == [f.seq for f in frames]
    assert out["found"] == out["matched"] == len(out["offered"]) == writer.stats.written


async def test_the_reference_holds_the_overlay_the_encoders_were_given(tmp_path: Path) -> None:
    config = sl.load_config(analyze=["fixedbox"], overlay=True, skipping="none")
    writer = ReferenceWriter(tmp_path, slots=128)
    frames = await run_pipeline("synthetic://?size=640x480&fps=30", writer, 60, config)
    drawn = [f for f in frames if f.analysis is not None and f.analysis.detections]
    assert drawn, "the detector never delivered"
    x, y = BOX[0], BOX[1]
    box_y = yuv_colour(OTHER)[0]
    with ReferenceReader(tmp_path) as reader:
        for frame in drawn:
            reference = reader.get(frame.seq)
            assert reference is not None
            assert np.array_equal(reference, frame.i420())
            assert abs(int(reference[y, x + 10]) - box_y) <= 1  # the box's top edge
        plain = reader.get(frames[0].seq)
    scene = SyntheticScene(640, 480, objects=3, seed=0)
    assert plain is not None
    code_h = framecode.region(640)[3]
    expected = bgr_to_i420(scene.render(frames[0].seq)[0])
    assert np.array_equal(plain[code_h:480], expected[code_h:480])  # before any analysis


def test_a_lagging_reader_is_told_the_slot_was_overwritten(tmp_path: Path) -> None:
    writer = ReferenceWriter(tmp_path, slots=4, queue_size=64)
    for seq in range(10):
        writer.offer(coded_frame(seq, value=seq * 10))
    writer.close()
    with ReferenceReader(tmp_path) as reader:
        assert reader.get(2) is None
        assert reader.stats.overwritten == 1
        assert reader.get(42) is None
        assert reader.stats.missing == 1
        newest = reader.get(9)
        assert newest is not None and int(newest[-1, -1]) == 90
        assert reader.stats.found == 1
        assert reader.offered().tolist() == list(range(10))


class RacingReader(ReferenceReader):
    """A reader whose copy is interrupted by the writer reusing the slot."""

    def __init__(self, folder: Path, overwrite: object) -> None:
        super().__init__(folder)
        self.overwrite = overwrite

    def _copy(self, ring: _Ring, seq: int) -> np.ndarray:
        pixels = super()._copy(ring, seq)
        self.overwrite(seq)  # type: ignore[operator]
        return pixels


def test_a_slot_overwritten_during_the_copy_is_never_returned(tmp_path: Path) -> None:
    writer = ReferenceWriter(tmp_path, slots=4, queue_size=64)
    for seq in range(4):
        writer.offer(coded_frame(seq))
    writer.close()
    index_path = tmp_path / "ring-320x240.index"

    def overwrite(seq: int) -> None:  # what the writer does to reuse the slot
        index = np.memmap(index_path, dtype=np.int64, mode="r+")
        index[seq % 4] = seq + 4
        index.flush()

    with RacingReader(tmp_path, overwrite) as reader:
        assert reader.get(1) is None
        assert reader.stats.overwritten == 1 and reader.stats.found == 0
        assert reader.get(2) is None  # (the racing copy again)
    with ReferenceReader(tmp_path) as plain:
        assert plain.get(3) is not None


def test_the_ring_is_bounded_per_size(tmp_path: Path) -> None:
    writer = ReferenceWriter(tmp_path, slots=5, queue_size=64)
    for seq in range(15):
        writer.offer(coded_frame(seq, 320, 240))
    for seq in range(15, 40):
        writer.offer(coded_frame(seq, 640, 360))
    writer.close()
    assert writer.stats.written == 40
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert sizes["ring-320x240.frames"] == 5 * frame_bytes(320, 240)
    assert sizes["ring-640x360.frames"] == 5 * frame_bytes(640, 360)
    assert sizes[OFFERED] == 40 * 8
    assert len(sizes) == 5  # two rings (frames + index each) and the offered seqs
    with ReferenceReader(tmp_path) as reader:
        found = [s for s in range(40) if reader.get(s) is not None]
    assert found == [10, 11, 12, 13, 14, 35, 36, 37, 38, 39]


def test_a_full_queue_drops_and_counts_never_blocks(tmp_path: Path) -> None:
    writer = ReferenceWriter(tmp_path, slots=8, queue_size=3)
    busy, release = threading.Event(), threading.Event()

    def hold(_: np.ndarray) -> None:
        busy.set()
        release.wait(10)

    base = coded_frame(0)
    writer.offer(Frame(None, 0, 0, Fraction(1, 90000), 0.0, base=base, draw=hold))
    assert busy.wait(10)
    for seq in range(1, 6):
        writer.offer(coded_frame(seq))  # 3 fit, 2 are dropped
    assert writer.stats.dropped == 2
    release.set()
    writer.close()
    assert writer.stats.written == 4
    with ReferenceReader(tmp_path) as reader:
        assert reader.offered().tolist() == [0, 1, 2, 3]


def test_frames_without_a_code_are_counted_not_written(tmp_path: Path) -> None:
    writer = ReferenceWriter(tmp_path, slots=4, queue_size=64)
    plain = np.full((360, 320), 90, dtype=np.uint8)
    writer.offer(Frame.from_i420(plain, 0, 0, Fraction(1, 90000), 0.0))
    writer.offer(coded_frame(1))
    writer.close()
    assert writer.stats.uncoded == 1 and writer.stats.written == 1


def test_a_ring_needs_two_slots(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 slots"):
        ReferenceWriter(tmp_path, slots=1)
