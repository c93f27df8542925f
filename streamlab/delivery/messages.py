"""Analysis results to viewers over their data channel, stamped with each viewer's own RTP
timestamps so a player can draw the boxes on the exact frame they describe."""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from streamlab.delivery.viewer import Viewer
from streamlab.frame import Frame

REMEMBERED_FRAMES = 512
RESEND_FRAMES = 15
MAX_CHANNEL_BUFFER = 1_000_000


class AnalysisMessages:
    """One data-channel message per new analysis result (and a reminder every
    ``RESEND_FRAMES`` frames for the player's lag figures); none without analysis: each
    message costs SCTP work on the event loop for every viewer."""

    def __init__(self) -> None:
        self._last_result_seq = -1
        self._frame_ticks: OrderedDict[int, tuple[int, int | None]] = OrderedDict()
        self._unit_ticks: OrderedDict[int, int] = OrderedDict()

    def remember_unit(self, pts: int, ticks: int) -> None:
        """The RTP ticks a camera access unit (by its PTS) was sent with."""
        _remember(self._unit_ticks, pts, ticks)

    def frame_sent(self, frame: Frame, ticks: int) -> int | None:
        """Note the ticks of a decoded frame (and of its access unit); returns the latter."""
        unit_ticks = self._unit_ticks.get(frame.pts)
        _remember(self._frame_ticks, frame.seq, (ticks, unit_ticks))
        return unit_ticks

    def send(
        self,
        frame: Frame,
        ticks: int,
        unit_ticks: int | None,
        viewers: Iterable[Viewer],
        *,
        direct: Callable[[Viewer], bool],
        burned: bool,
    ) -> None:
        """Tell every viewer with an open channel the latest result ``frame`` carries.

        ``direct(viewer)``: the viewer gets the camera's own units (their timestamps, and
        no burned boxes); ``burned``: the boxes are drawn into the transcoded video."""
        result = frame.analysis
        if result is None:
            return
        if result.seq == self._last_result_seq and frame.seq % RESEND_FRAMES:
            return
        self._last_result_seq = result.seq
        base: dict[str, Any] = {"type": "analysis", "seq": frame.seq,
                                "captured_ms": int(frame.captured_at * 1000)}  # fmt: skip
        analysis = result.to_dict()
        analysed = self._frame_ticks.get(result.seq)
        base["lag_frames"] = frame.seq - result.seq
        for viewer in viewers:
            channel = viewer.channel
            if channel is None or channel.readyState != "open":
                continue
            if channel.bufferedAmount >= MAX_CHANNEL_BUFFER:
                continue
            own_units = direct(viewer)
            message = dict(base)
            message["burned"] = burned and not own_units
            rtp = viewer.track.rtp_timestamp(unit_ticks if own_units and unit_ticks else ticks)
            if rtp is not None:
                message["rtp_timestamp"] = rtp
            described = dict(analysis)
            if analysed is not None:
                own = analysed[1] if own_units and analysed[1] is not None else analysed[0]
                described_rtp = viewer.track.rtp_timestamp(own)
                if described_rtp is not None:
                    described["rtp_timestamp"] = described_rtp
            message["analysis"] = described
            tell(viewer, message)


def tell(viewer: Viewer, message: dict[str, Any]) -> None:
    """Send ``message`` as JSON on the viewer's data channel when it is open."""
    channel = viewer.channel
    if channel is not None and channel.readyState == "open":
        with contextlib.suppress(Exception):
            channel.send(json.dumps(message))


def _remember(table: OrderedDict[int, Any], key: int, value: Any) -> None:
    table[key] = value
    while len(table) > REMEMBERED_FRAMES:
        table.popitem(last=False)
