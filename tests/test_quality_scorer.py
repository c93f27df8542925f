"""Scoring beside the viewer: never blocks, samples when busy, scores what it takes."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from streamlab import framecode
from streamlab.quality.metrics import MAX_PSNR_DB
from streamlab.quality.scorer import QualityScorer, Scored


def coded(seq: int, value: int = 100) -> np.ndarray:
    yuv = np.full((720, 640), value, dtype=np.uint8)
    framecode.burn_i420(yuv, seq, 0)
    return yuv


class GatedReferences:
    """References that answer only once ``open`` is set (a slow lookup)."""

    def __init__(self, frames: dict[int, np.ndarray]) -> None:
        self.frames = frames
        self.open = threading.Event()
        self.asked = threading.Event()

    def get(self, seq: int) -> np.ndarray | None:
        self.asked.set()
        self.open.wait(10)
        return self.frames.get(seq)


def test_a_busy_scorer_skips_and_counts_never_blocks() -> None:
    references = GatedReferences({seq: coded(seq) for seq in range(10)})
    scorer = QualityScorer(references, workers=1, queue_size=2)
    assert scorer.submit(0.0, 0, coded(0))
    assert references.asked.wait(10)  # the worker holds frame 0
    taken = [scorer.submit(float(seq), seq, coded(seq)) for seq in range(1, 10)]
    assert taken == [True, True] + [False] * 7
    assert scorer.stats.skipped == 7 and scorer.stats.submitted == 10
    references.open.set()
    scorer.close()
    assert [r.seq for r in scorer.results] == [0, 1, 2]
    assert all(r.psnr_y == MAX_PSNR_DB for r in scorer.results)


def test_scores_against_the_reference_of_the_frames_own_seq() -> None:
    references = GatedReferences({1: coded(1, 100), 2: coded(2, 100)})
    references.open.set()
    results: list[Scored] = []
    scorer = QualityScorer(references, results=results, queue_size=8)
    received = coded(1, 110)  # every sample outside the code 10 levels off
    scorer.submit(5.0, 1, received)
    scorer.submit(6.0, 3, coded(3))  # no reference for seq 3
    scorer.close()
    assert len(results) == 1 and results[0].at_ms == 5.0
    assert results[0].psnr_y == pytest.approx(10 * math.log10(255**2 / 100))
    assert (results[0].width, results[0].height) == (640, 480)
    assert scorer.stats.unmatched == 1 and scorer.stats.scored == 1
