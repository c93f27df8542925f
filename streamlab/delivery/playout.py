"""How long the browser may hold a frame before showing it (``playout_delay``).

WebRTC's playout-delay RTP header extension (``http://www.webrtc.org/experiments/rtp-hdrext/
playout-delay``: 12 bits of minimum, 12 bits of maximum, in 10 ms units) tells the receiver
the range its jitter buffer may use. Chromium offers it; aiortc does not know it, so for a
viewer that offered it we add it to the answer and to every RTP packet we send.

Specs:

- ``0`` (the default): no smoothing. Chromium decodes and shows each frame as soon as it is
  complete (its low-latency path, taken for any maximum up to 500 ms with a minimum of 0).
- ``browser``: no hint; the browser's adaptive jitter buffer decides (WebRTC's default).
- ``MS``: a fixed delay, e.g. ``200`` (minimum = maximum).
- ``MIN-MAX``: a range in ms, e.g. ``0-1000`` (adaptive, but never above 1 s).

Everything is in steps of 10 ms, up to 40950 ms. This module is the spec only;
``streamlab.webrtc.playout`` puts it on the wire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from streamlab.errors import ConfigError

URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
STEP_MS = 10
MAX_MS = 0xFFF * STEP_MS
LIP_SYNC_MAX_MS = 1000
BROWSER_DEFAULT_MAX_MS = 10_000  # Chromium's own maximum, sent to undo an earlier hint


@dataclass(frozen=True, slots=True)
class PlayoutDelay:
    """A playout-delay range in ms; ``None`` in place of one means "no hint"."""

    min_ms: int
    max_ms: int

    @classmethod
    def parse(cls, spec: str) -> PlayoutDelay | None:
        """``browser`` → None, ``MS`` → (MS, MS), ``MIN-MAX`` → (MIN, MAX); ConfigError else."""
        text = spec.strip().lower().removesuffix("ms")
        if text == "browser":
            return None
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", text)
        if not match:
            raise ConfigError(
                f"playout_delay {spec!r}: use browser, a delay in ms (0, 200) or a range (0-1000)"
            )
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        for value in (low, high):
            if value % STEP_MS or value > MAX_MS:
                raise ConfigError(f"playout_delay {spec!r}: each bound is a multiple of "
                                  f"{STEP_MS} ms between 0 and {MAX_MS}")  # fmt: skip
        if low > high:
            raise ConfigError(f"playout_delay {spec!r}: the minimum is above the maximum")
        return cls(low, high)

    def allowing_sync(self) -> PlayoutDelay:
        """The same minimum, and a maximum of at least ``LIP_SYNC_MAX_MS``: above
        Chromium's low-latency limit (500 ms), so its A/V sync may hold the video until
        the sound (audio buffers more than a latency-first video: 40 to 80 ms)."""
        return PlayoutDelay(self.min_ms, max(self.max_ms, LIP_SYNC_MAX_MS))

    def payload(self) -> bytes:
        """The extension's three bytes."""
        low, high = self.min_ms // STEP_MS, self.max_ms // STEP_MS
        return bytes([low >> 4, ((low & 0xF) << 4) | (high >> 8), high & 0xFF])

    def __str__(self) -> str:
        return str(self.min_ms) if self.min_ms == self.max_ms else f"{self.min_ms}-{self.max_ms}"


def normalized(spec: str) -> str:
    """The canonical spelling of ``spec`` (ConfigError when it is not one)."""
    delay = PlayoutDelay.parse(spec)
    return "browser" if delay is None else str(delay)


def offered_id(offer_sdp: str) -> int | None:
    """The extension id the offer's video section gives the playout-delay extension."""
    for section in offer_sdp.split("\nm=")[1:]:
        if not section.startswith("video"):
            continue
        match = re.search(r"^a=extmap:(\d+)(?:/\w+)? " + re.escape(URI) + r"\s*$",
                          section, re.MULTILINE)  # fmt: skip
        return int(match.group(1)) if match else None
    return None
