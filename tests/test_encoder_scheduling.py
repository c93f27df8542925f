"""Encoding AV1 leaves every thread time-sharing.

SVT-AV1, run as root (as CI and containers run), made the thread that opened it and its own
threads SCHED_FIFO priority 99; everything that thread started afterwards inherited it (a
Chromium started later by the test process spun at real-time priority in the kernel).
"""

from __future__ import annotations

import os
import threading

import pytest

from streamlab.webrtc.codecs.samples import encode
from streamlab.webrtc.scheduling import REAL_TIME, recorded_policy, thread_policies, time_sharing


@pytest.mark.skipif(os.geteuid() != 0, reason="SVT-AV1 asks for real-time only as root")
def test_an_av1_encoder_makes_no_thread_real_time() -> None:
    opened = threading.Thread(target=encode, args=("libsvtav1",), kwargs={
        "frames": 3, "size": (320, 240)})  # fmt: skip
    opened.start()
    opened.join(60)
    encode("libsvtav1", frames=3, size=(320, 240))  # and in this thread
    real_time = {tid: p for tid, p in thread_policies().items() if p in REAL_TIME}
    assert real_time == {}, f"real-time threads: {real_time}"
    # and as the C library records it: libzmq, for one, reads that back and applies it to
    # the threads it starts (a Jupyter kernel's ZMQ threads came out real-time)
    assert recorded_policy() == os.SCHED_OTHER


@pytest.mark.skipif(os.geteuid() != 0, reason="setting SCHED_FIFO needs root")
def test_time_sharing_undoes_only_what_happened_inside() -> None:
    with time_sharing() as undone:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    assert undone == [threading.get_native_id()]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
