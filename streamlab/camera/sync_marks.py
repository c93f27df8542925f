"""The test camera's A/V sync marks (``--wave sync``): a flash in the picture, a click in the sound.

Run inside the camera process (Debian's python3 with ``gi``; no numpy). Once a second, on
the camera's own running time, the first frame at or after the whole second is marked: a
white square in the bottom-right corner (``mark_square``) that stays for ``HOLD_FRAMES``
frames and is black otherwise. The microphone (an ``appsrc`` fed by ``ClickTrack``) is
silent except for a click — a ``CLICK_HZ`` tone burst — whose first sample carries that
marked frame's own timestamp. Both tracks go out on one pipeline clock, so any offset a
viewer measures between the flash's onset and the click's was added after the camera.
"""

import math
import threading
import time
from array import array
from collections import deque

PERIOD_NS = 1_000_000_000
HOLD_FRAMES = 3
CLICK_S = 0.02
CLICK_HZ = 1000
CLICK_AMPLITUDE = 0.5
CHUNK_S = 0.02  # one RTP packet of G.711 (160 samples at 8 kHz)
LAG_NS = 5_000_000  # a chunk is made this long after its end: every mark in it is known


def mark_square(width, height):
    """(x, y, size) of the mark: a square of an eighth of the height, its own half-size from
    the bottom-right corner (clear of the frame code, which sits top-left)."""
    size = max(16, height // 8)
    return width - size - size // 2, height - size - size // 2, size


class Marker:
    """Marks one pipeline's frames and remembers when (running time, ns)."""

    def __init__(self, width, height):
        self.width = width
        self.x, self.y, self.size = mark_square(width, height)
        self.next_ns = PERIOD_NS
        self.hold = 0
        self.marks = deque(maxlen=64)
        self.lock = threading.Lock()
        self._rows = {0: bytes(self.size * 3), 255: b"\xff" * (self.size * 3)}

    def frame(self, data, running_ns):
        """A copy of the BGR frame ``data`` with the square painted white (marked) or black."""
        if running_ns >= self.next_ns:
            with self.lock:
                self.marks.append(running_ns)
            self.hold = HOLD_FRAMES
            self.next_ns = (running_ns // PERIOD_NS + 1) * PERIOD_NS
        row = self._rows[255 if self.hold > 0 else 0]
        self.hold = max(0, self.hold - 1)
        out = bytearray(data)
        stride = self.width * 3
        for line in range(self.y, self.y + self.size):
            start = line * stride + self.x * 3
            out[start : start + len(row)] = row
        return bytes(out)

    def marks_between(self, start_ns, end_ns):
        with self.lock:
            return [m for m in self.marks if start_ns <= m < end_ns]


class ClickTrack(threading.Thread):
    """Feeds a live ``appsrc`` with signed 16-bit mono at ``rate``: silence, and a click at
    each of ``marker``'s marks, sample-exact. Stops with ``stop()``."""

    def __init__(self, appsrc, rate, marker, gst):
        super().__init__(daemon=True)
        self.appsrc, self.rate, self.marker, self.gst = appsrc, rate, marker, gst
        self.chunk = int(rate * CHUNK_S)
        self.click = array(
            "h",
            (
                round(32767 * CLICK_AMPLITUDE * math.sin(2 * math.pi * CLICK_HZ * i / rate))
                for i in range(int(rate * CLICK_S))
            ),
        )
        self.stopped = threading.Event()

    def stop(self):
        self.stopped.set()

    def _ns(self, samples):
        return samples * 1_000_000_000 // self.rate

    def _chunk(self, start_ns, first):
        """Samples ``first .. first + chunk`` (counted from ``start_ns``), clicks included."""
        samples = array("h", bytes(2 * self.chunk))
        begin = start_ns + self._ns(first)
        end = start_ns + self._ns(first + self.chunk)
        for mark in self.marker.marks_between(begin - self._ns(len(self.click)), end):
            at = round((mark - start_ns) * self.rate / 1_000_000_000) - first  # in this chunk
            for i in range(max(0, at), min(self.chunk, at + len(self.click))):
                samples[i] = self.click[i - at]
        return samples

    def run(self):
        gst, none = self.gst, self.gst.CLOCK_TIME_NONE
        start_ns, made = None, 0
        while not self.stopped.is_set():
            now = self.appsrc.get_current_running_time()
            if now is None or now == none:
                time.sleep(0.005)
                continue
            if start_ns is None:
                start_ns = now
            while start_ns + self._ns(made + self.chunk) + LAG_NS <= now:
                buffer = gst.Buffer.new_wrapped(self._chunk(start_ns, made).tobytes())
                buffer.pts = buffer.dts = start_ns + self._ns(made)
                buffer.duration = self._ns(self.chunk)
                made += self.chunk
                if self.appsrc.emit("push-buffer", buffer) != gst.FlowReturn.OK:
                    return
            time.sleep(0.005)
