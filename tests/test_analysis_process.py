"""Analysis in a worker process over shared memory: results, restarts, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pytest

import streamlab as sl
from streamlab.analysis.worker import AnalysisWorker, SlotRing, worker_main
from streamlab.frame import bgr_to_i420
from streamlab.pipeline import Pipeline

pytestmark = pytest.mark.timeout(120)


def segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").iterdir() if p.name.startswith("psm_")}


async def frames_until(tap: object, predicate, limit: int = 900) -> list[sl.Frame]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(limit):
        out.append(await asyncio.wait_for(tap.get(), 10))  # type: ignore[attr-defined]
        if predicate():
            break
    return out


async def test_detectors_run_in_a_worker_process_and_results_reach_later_frames() -> None:
    before = segments()
    config = sl.load_config(analyze=["motion"], analysis_isolation="process", overlay=False)
    pipeline = Pipeline("synthetic://?size=640x480&fps=30&objects=3", config=config)
    async with pipeline:
        tap = pipeline.tap(maxsize=400)
        engine = pipeline.engine
        await frames_until(tap, lambda: engine.completed >= 40)
        pid = engine.worker_pid
        assert pid is not None and pid != os.getpid()
        frames = await frames_until(tap, lambda: False, limit=30)
        assert len(segments() - before) == 1  # one ring while it runs
    assert engine.completed >= 40 and engine.failures == 0
    latest = [f.analysis for f in frames if f.analysis is not None]
    assert latest and latest[-1].detections
    truth = pipeline.source.ground_truth(latest[-1].seq)  # type: ignore[attr-defined]
    ious = [max(t.iou(d) for t in truth) for d in latest[-1].detections]
    assert max(ious) >= 0.5  # boxes in frame pixels, where the objects are
    assert segments() == before  # the ring is unlinked at stop
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_killed_worker_is_restarted_and_the_video_never_waits() -> None:
    config = sl.load_config(analyze=["people"], analysis_isolation="process")
    pipeline = Pipeline("synthetic://?size=320x240&fps=30&objects=2", config=config)
    async with pipeline:
        tap = pipeline.tap(maxsize=400)
        engine = pipeline.engine
        await frames_until(tap, lambda: engine.completed >= 5)
        first = engine.worker_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        done = engine.completed
        frames = await frames_until(tap, lambda: engine.completed >= done + 5)
        assert engine.restarts == 1 and engine.failures >= 1
        assert engine.worker_pid not in (None, first)
        seqs = [f.seq for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no frame held back or lost


def test_a_slot_overwritten_while_the_worker_copies_is_refused_not_analysed() -> None:
    yuv = bgr_to_i420(np.full((240, 320, 3), 90, np.uint8))
    ring = SlotRing(2, yuv.nbytes)
    parent, child = socket.socketpair()
    conn = Connection(parent.detach())
    worker = threading.Thread(
        target=worker_main, args=(Connection(child.detach()), ring.name, yuv.nbytes)
    )
    worker.start()
    try:
        from streamlab.analysis.worker import Request

        slot = ring.write(7, yuv)
        conn.send(Request(slot, 7, 320, 240, ("motion",), 640, False, {}))
        assert conn.recv()[0] == "ok"
        slot = ring.write(9, yuv)  # the slot now holds seq 9, the request names seq 8
        conn.send(Request(slot, 8, 320, 240, ("motion",), 640, False, {}))
        reply = conn.recv()
        assert reply[0] == "error" and "overwritten" in reply[1]
    finally:
        conn.send(None)
        worker.join(10)
        conn.close()
        ring.close()
    assert not worker.is_alive()


def test_the_frame_is_copied_so_the_parent_may_reuse_its_buffer() -> None:
    ring = SlotRing(2, 320 * 360)
    try:
        planes = np.arange(320 * 360, dtype=np.uint32).astype(np.uint8).reshape(360, 320)
        slot = ring.write(3, planes)
        planes[:] = 0
        base = slot * (16 + ring.slot_bytes)
        stored = np.frombuffer(ring.shm.buf, np.uint8, ring.slot_bytes, base + 16)
        assert stored[1] == 1 and stored[300] == 300 % 256
        del stored
    finally:
        ring.close()


def test_isolation_is_a_validated_setting() -> None:
    assert sl.load_config(analysis_isolation="process").analysis_isolation == "process"
    with pytest.raises(sl.ConfigError, match="analysis_isolation"):
        sl.load_config(analysis_isolation="fiber")
    with pytest.raises(sl.ConfigError, match="analysis_size"):
        sl.load_config(analysis_size=10)


def test_a_new_frame_size_gets_a_new_ring_without_counting_a_restart() -> None:
    before = segments()
    worker = AnalysisWorker("resize", slots=2)
    try:
        for width, height in [(320, 240), (640, 480)]:
            planes = bgr_to_i420(np.full((height, width, 3), 90, np.uint8))
            found, timings = worker.analyse(
                planes, 1, ("motion",), max_width=640, hide_code=False, user={}
            )
            assert found == [] and "motion" in timings
            assert len(segments() - before) == 1
        assert worker.restarts == 0 and worker.failures == 0 and worker.started == 2
    finally:
        worker.close()
    assert segments() == before
