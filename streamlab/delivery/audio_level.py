"""The camera's audio level on the server: RMS of the last half second, in dBov.

dBov is the level relative to the codec's overload point (0 = full scale; a full-scale
sine is -3 dBov), floored at -127 for digital silence, as RFC 6464 sends it. Samples are
normalised to 16-bit full scale (32768), so G.711's own peaks (A-law 32256, µ-law 32124)
read a fraction of a dB under 0. A-law has no code for zero: its two codes nearest zero
(±8, -72 dBov as decoded) count as silence, so a silent A-law camera reads -127 as a silent
µ-law one does.

Where the samples come from, and what that costs:

* **G.711 (PCMA, PCMU)**: each packet's bytes index a 256-entry table of linear values
  (``numpy.take``, then a dot product) in the source thread as the packet arrives, always,
  whatever the ``audio`` setting and the viewers: about 6 µs a 20 ms packet, 0.03 % of a
  core.
* **Anything else (AAC, Opus)**: only what the stream's Opus transcoder decodes anyway
  (``delivery/opus.py``, its own thread) is measured: about 10 µs a 1024-sample AAC frame,
  0.05 % of a core. When no transcoder runs (no viewer gets Opus made by the server)
  nothing decodes the camera's audio, and the level is None.

The meter never blocks its reader: the measuring thread publishes the window's mean power
and the time of its last packet as one tuple, which ``dbov()`` reads without a lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

import numpy as np

WINDOW_S = 0.5  # the level is over the last half second of audio
MAX_BLOCKS = 4096  # a 0.5 s window holds 25 G.711 packets or 24 AAC frames
STALE_S = 1.0  # no packet for this long: nothing to report (None)
SILENCE_DBOV = -127.0
FULL_SCALE = 32768.0
G711 = ("pcm_alaw", "pcm_mulaw")


def alaw_to_linear(code: int) -> int:
    """One A-law byte as a 16-bit linear sample (ITU-T G.711, as FFmpeg decodes it)."""
    code ^= 0x55
    magnitude = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        magnitude += 8
    else:
        magnitude = (magnitude + 0x108) << (segment - 1)
    return magnitude if code & 0x80 else -magnitude


def ulaw_to_linear(code: int) -> int:
    """One µ-law byte as a 16-bit linear sample (ITU-T G.711, as FFmpeg decodes it)."""
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return 0x84 - magnitude if code & 0x80 else magnitude - 0x84


def _table(decode: Any) -> np.ndarray:
    linear = np.array([decode(code) for code in range(256)], dtype=np.float64)
    linear[np.abs(linear) <= 8] = 0.0  # A-law's "zero" (0x55, 0xD5); µ-law's is 0 already
    return linear / FULL_SCALE


LINEAR = {"pcm_alaw": _table(alaw_to_linear), "pcm_mulaw": _table(ulaw_to_linear)}


def dbov(power: float) -> float:
    """Mean power (full scale = 1) as dBov, rounded to 0.1 dB; -127 for silence."""
    if power <= 0:
        return SILENCE_DBOV
    return round(max(SILENCE_DBOV, min(0.0, 10 * math.log10(power))), 1)


def sum_of_squares(samples: np.ndarray) -> float:
    """Sum of squared samples normalised to full scale (float formats are ±1 already)."""
    values = samples.astype(np.float64, copy=False).ravel()
    if samples.dtype.kind == "u":  # unsigned 8-bit PCM: centred on 128
        values = (values - 128.0) / 128.0
    elif samples.dtype.kind == "i":
        values = values / float(2 ** (8 * samples.dtype.itemsize - 1))
    return float(np.dot(values, values))


class LevelMeter:
    """RMS level of the camera's audio over the last ``window_s`` seconds, in dBov.

    Fed by one thread at a time (the source thread for G.711, the transcoder for decoded
    audio); read from any thread. ``dbov()`` is None before the first packet and once no
    packet has come for ``stale_s`` (the camera went quiet on the wire, not silent).
    """

    def __init__(self, window_s: float = WINDOW_S, stale_s: float = STALE_S) -> None:
        self.window_s = window_s
        self.stale_s = stale_s
        self.blocks = 0
        # per block of the window (trimmed to window_s as blocks come; the bound is a guard)
        self._squares: deque[float] = deque(maxlen=MAX_BLOCKS)  # sum of squared samples,
        self._counts: deque[int] = deque(maxlen=MAX_BLOCKS)  # how many samples,
        self._durations: deque[float] = deque(maxlen=MAX_BLOCKS)  # how many seconds
        self._seconds = 0.0
        self._lock = threading.Lock()  # between feeders only; readers take no lock
        self._published: tuple[float, float] | None = None  # (mean power, monotonic time)

    def add_g711(self, data: bytes, codec: str, rate: int = 8000, channels: int = 1) -> None:
        """One G.711 packet (``pcm_alaw`` or ``pcm_mulaw``): a byte a sample."""
        codes = np.frombuffer(data, dtype=np.uint8)
        if codes.size:
            values = LINEAR[codec].take(codes)
            self._add(float(values @ values), codes.size, codes.size / channels / rate)

    def add_frame(self, frame: Any) -> None:
        """One decoded ``av.AudioFrame`` (any sample format, any channels)."""
        if frame.samples and frame.sample_rate:
            samples = frame.to_ndarray()
            self._add(sum_of_squares(samples), samples.size, frame.samples / frame.sample_rate)

    def _add(self, squares: float, count: int, seconds: float) -> None:
        with self._lock:
            self._squares.append(squares)
            self._counts.append(count)
            self._durations.append(seconds)
            self._seconds += seconds
            while len(self._durations) > 1 and self._seconds - self._durations[0] >= self.window_s:
                self._seconds -= self._durations.popleft()
                self._squares.popleft()
                self._counts.popleft()
            self.blocks += 1
            power = sum(self._squares) / sum(self._counts)  # afresh: no running-sum drift
            self._published = (power, time.monotonic())

    def dbov(self) -> float | None:
        """The level now: dBov (-127 silence … 0 full scale), or None (nothing measured)."""
        published = self._published
        if published is None or time.monotonic() - published[1] > self.stale_s:
            return None
        return dbov(published[0])
