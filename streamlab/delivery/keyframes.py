"""Keyframe discipline for one shared encoder: requests coalesced and rate-limited.

Every viewer of an encoder may ask for a keyframe (a PLI/FIR, a join, a rung switch, a queue
overflow); Chromium repeats its PLI every 200 ms while it waits. Forcing one keyframe per
request would let one lossy viewer flood everyone on that encoder with keyframes (the large
frames that overflow slow links), so at most one is forced per ``min_interval_s`` and the
requests in between are merged into one pending request (libwebrtc drops requests within
300 ms; mediasoup keeps one pending request per stream). Every keyframe goes to every viewer
of the encoder, and on this stack each packet costs each viewer ~0.1 ms of the event loop
(packetize, SRTP, send): with hundreds of viewers joining, one keyframe per 500 ms saturated
the loop. So the interval is also at least ``PER_VIEWER_S`` per viewer of the encoder (500
viewers: one forced keyframe per 5 s).
"""

from __future__ import annotations

from dataclasses import dataclass

PER_VIEWER_S = 0.01


@dataclass(slots=True)
class KeyframeLimiter:
    """``request()`` from anywhere on the loop; the encoder asks ``take(now)`` per frame."""

    min_interval_s: float = 0.5
    viewers: int = 1
    requests: int = 0
    forced: int = 0
    keyframes: int = 0
    _pending: bool = False
    _last: float = float("-inf")

    def request(self) -> None:
        """Ask for a keyframe (merged with any request still pending)."""
        self.requests += 1
        self._pending = True

    @property
    def pending(self) -> bool:
        return self._pending

    @property
    def interval_s(self) -> float:
        """The shortest time between two forced keyframes, for this many viewers."""
        return max(self.min_interval_s, self.viewers * PER_VIEWER_S)

    def take(self, at: float) -> bool:
        """Whether the frame encoded at ``at`` must be forced to a keyframe."""
        if not self._pending or at - self._last < self.interval_s:
            return False
        self._pending = False
        self.forced += 1
        return True

    def sent(self, at: float) -> None:
        """A keyframe went out at ``at`` (forced or not): it answers every pending request."""
        self.keyframes += 1
        self._last = at
        self._pending = False

    @property
    def coalesced(self) -> int:
        """Requests that did not cost a keyframe of their own."""
        return max(0, self.requests - self.forced)
