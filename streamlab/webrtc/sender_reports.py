"""Sender reports on the capture clock, so a browser lines audio up with the picture.

A receiver syncs a stream's audio and video by the NTP ↔ RTP mapping in each track's RTCP
sender reports. aiortc maps the RTP timestamp of the last packet sent to the moment it was
sent, so a video frame that spent 40 ms in decode, analysis and encode is declared 40 ms
later than the audio captured with it (passed through in a millisecond), and the browser
plays the sound early by that much. ``capture_clock(sender, origin)`` makes the report map
a packet's RTP timestamp to when its media reached the server instead: the track's
``last_sent`` (pts, time base) counts from the stream's ``MediaClock`` origin (epoch
seconds, ``origin()``), shared by audio and video, so both tracks are declared on one
timeline. ``sender_reports = "send"`` keeps aiortc's own mapping (for comparison).

aiortc keeps the pair in two private attributes, written after every packet it sends and
read when it builds a report (and for its round-trip time, from the same value); the
sender's class is swapped for a subclass whose properties compute the pair (aiortc is
pinned in pyproject.toml for this).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender

NTP_EPOCH_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01
SENDER_REPORT_CLOCKS = ("capture", "send")


def ntp64(epoch_s: float) -> int:
    """A 64-bit NTP timestamp for epoch seconds."""
    return int((epoch_s + NTP_EPOCH_OFFSET_S) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def _ntp(sender: Any) -> int:
    return int(sender.__dict__.get("_sl_ntp", 0))


def _set_ntp(sender: Any, value: int) -> None:
    sender.__dict__["_sl_ntp"] = value  # the send time, until the next line replaces it


def _rtp(sender: Any) -> int:
    return int(sender.__dict__.get("_sl_rtp", 0))


def _set_rtp(sender: Any, value: int) -> None:
    """aiortc sets this right after each packet, before it asks the track for the next
    frame: the track's ``last_sent`` is that packet's frame."""
    sender.__dict__["_sl_rtp"] = value
    origin = sender.__dict__.get("_sl_origin")
    last = getattr(sender.__dict__.get("_RTCRtpSender__track"), "last_sent", None)
    start = origin() if origin is not None else None
    if start is not None and last is not None:
        pts, time_base = last
        sender.__dict__["_sl_ntp"] = ntp64(start + float(pts * time_base))


class CaptureClockSender(RTCRtpSender):
    """An ``RTCRtpSender`` whose sender reports use the capture clock (see the module)."""

    _RTCRtpSender__ntp_timestamp = property(_ntp, _set_ntp)
    _RTCRtpSender__rtp_timestamp = property(_rtp, _set_rtp)


def capture_clock(sender: Any, origin: Callable[[], float | None]) -> None:
    """Make ``sender``'s reports map RTP time to capture time (``origin``: the epoch
    seconds of the stream clock's tick 0, None while unknown)."""
    if not isinstance(sender, RTCRtpSender) or isinstance(sender, CaptureClockSender):
        return
    state = sender.__dict__
    state["_sl_ntp"] = state.get("_RTCRtpSender__ntp_timestamp", 0)
    state["_sl_rtp"] = state.get("_RTCRtpSender__rtp_timestamp", 0)
    state["_sl_origin"] = origin
    sender.__class__ = CaptureClockSender


def release(sender: Any) -> None:
    """Drop the reference to the stream's clock (a closed viewer's sender may linger)."""
    sender.__dict__.pop("_sl_origin", None)
