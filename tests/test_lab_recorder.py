"""EventRecorder: bounded, typed, flattened into a DataFrame."""

from __future__ import annotations

import streamlab as sl
from streamlab.events import FrameDelivered, FrameDropped
from streamlab.lab.recorder import EventRecorder


def test_records_only_the_chosen_types_and_stays_bounded() -> None:
    bus = sl.EventBus()
    with EventRecorder(bus, FrameDelivered, maxlen=5) as recorder:
        for seq in range(12):
            bus.emit(FrameDelivered("cam", seq, 0.01 * seq, {"captured": 0.0, "sent": 0.002}))
            bus.emit(FrameDropped("cam", seq, "buffer", "full"))
    bus.emit(FrameDelivered("cam", 99, 0.5, {}))
    frame = recorder.dataframe()
    assert recorder.seen == 12
    assert list(frame["seq"]) == [7, 8, 9, 10, 11]
    assert set(frame["event"]) == {"FrameDelivered"}
    assert "stages.sent" in frame.columns
    assert frame["latency_s"].is_monotonic_increasing
