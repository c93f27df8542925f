"""The 90 kHz RTP clock of a stream's outgoing frames (``rtp_clock``).

``arrival``: a frame's timestamp is when it reached the server (RTSP packet received, or the
frame made). Network and camera jitter are then already in the timestamps, so the browser's
jitter buffer sees a steady stream and holds little.

``camera``: a frame's timestamp follows the camera's own presentation time (FFmpeg maps the
camera's RTP clock with its RTCP sender reports), anchored once to the arrival clock. The
spacing is the camera's, so motion is as even as it was captured; whatever jitter arises
after the camera (network, decode, encode) shows up as delay variation at the receiver.
When the camera's clock jumps (a reconnect restarts it, or it drifts more than a second
from ours) the anchor is taken again; timestamps never run backwards. A stream keeps one clock
per path (the camera's units, the decoded frames), as each path must be monotonic itself.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Literal

RATE = 90_000
MAX_DRIFT_TICKS = RATE  # one second between the camera's clock and ours: re-anchor
MAX_REORDER_TICKS = RATE // 2  # the camera's clock going back further is a restart
OFFSET_FRAMES = 90  # the camera-to-ours offset: the least-delayed of the last 90 frames
MIN_OFFSET_FRAMES = 10

ClockMode = Literal["arrival", "camera"]


class MediaClock:
    """``ticks(arrival_s, pts, time_base, path)``: the RTP ticks (from 0) of one frame.

    Every path (``units``: the camera's access units, ``frames``: decoded frames) shares the
    origin and is anchored and kept monotonic on its own. ``camera_offset()`` says where the
    camera's own time lands on our ticks (for the video), so the camera's audio can be put
    on the same ticks by its own timestamps (``streamlab.delivery.audio``).
    """

    def __init__(self, mode: ClockMode = "arrival") -> None:
        self.mode: ClockMode = mode
        self.anchors = 0
        self._t0: float | None = None
        self._paths: dict[str, list[int]] = {}  # path -> [anchor camera, anchor ours, last
        # ours, last camera]
        self._offsets: deque[int] = deque(maxlen=OFFSET_FRAMES)  # our ticks - camera's
        self._last_camera: int | None = None

    def camera_offset(self) -> int | None:
        """Ticks to add to a camera time (in 90 kHz ticks of its presentation clock) to get
        ours, from the least-delayed of the last frames (None before ``MIN_OFFSET_FRAMES``
        frames of this camera connection)."""
        return min(self._offsets) if len(self._offsets) >= MIN_OFFSET_FRAMES else None

    def _note_offset(self, camera: int, ticks: int) -> None:
        last = self._last_camera
        if last is not None and camera < last - MAX_REORDER_TICKS:
            self._offsets.clear()  # a new connection: its clock starts elsewhere
        self._last_camera = camera
        self._offsets.append(ticks - camera)

    @property
    def origin(self) -> float | None:
        """Epoch seconds of tick 0 (the first frame's arrival); None before it."""
        return self._t0

    def ticks(
        self,
        arrival_s: float,
        pts: int | None = None,
        time_base: Fraction | None = None,
        path: str = "frames",
    ) -> int:
        if self._t0 is None:
            self._t0 = arrival_s
        arrival = round((arrival_s - self._t0) * RATE)
        if pts is None:
            return arrival
        camera = pts if time_base is None else round(pts * time_base * RATE)
        if self.mode == "arrival":
            self._note_offset(camera, arrival)
            return arrival
        state = self._paths.get(path)
        if state is None:
            state = self._paths[path] = [camera, arrival, -1, camera]
            self.anchors += 1
        ticks = state[1] + camera - state[0]
        jumped_back = camera < state[3] - MAX_REORDER_TICKS  # more than B-frames reorder
        if jumped_back or abs(ticks - arrival) > MAX_DRIFT_TICKS:
            ticks = max(arrival, state[2] + 1)  # the camera's clock restarted or drifted
            state[0], state[1] = camera, ticks
            self.anchors += 1
        # never backwards (a B-frame's presentation time is earlier than its predecessor's)
        ticks = max(ticks, state[2] + 1)
        state[2], state[3] = ticks, camera
        self._note_offset(camera, ticks)
        return ticks
