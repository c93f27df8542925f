"""One Opus encoder per stream: the camera's audio (AAC or any) decoded and re-encoded in a
thread of its own, its packets shared by every Opus viewer.

The input queue is bounded (``MAX_QUEUED`` packets, about a second); when it is full the
oldest packet is dropped and counted. A new camera connection starts a new decoder (its
configuration may have changed) and re-anchors the timestamps. The frames it decodes feed
the stream's level meter (``StreamAudio.level``), except G.711's, measured on arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from fractions import Fraction
from typing import Any

import av
import structlog

from streamlab.delivery.audio import AudioTimeline
from streamlab.delivery.audio_level import G711
from streamlab.sources.audio import AudioUnit

log = structlog.get_logger("streamlab.audio")

RATE = 48_000
FRAME = 960  # 20 ms
LOOKAHEAD = 120  # libopus's look-ahead for the low-delay application: 2.5 ms at 48 kHz
MAX_QUEUED = 64
BITRATE = 32_000


class OpusTranscoder:
    """Decode → resample (48 kHz stereo, 20 ms frames) → libopus, in one thread."""

    def __init__(self, audio: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.audio = audio
        self.loop = loop
        self.queue: queue.Queue[tuple[AudioUnit, float] | None] = queue.Queue(MAX_QUEUED)
        self.timeline = AudioTimeline(audio.clock, RATE)
        self.dropped = 0
        self.decoded = 0
        self.encoded = 0
        self.errors = 0
        self.cpu_s = 0.0  # thread CPU time spent decoding + encoding
        self._thread: threading.Thread | None = None
        self._connection = -1
        self._decoder: Any = None
        self._resampler: Any = None
        self._encoder: Any = None
        self._next: int | None = None  # RTP ticks of the next Opus packet

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="opus-transcoder", daemon=True)
        self._thread.start()

    def put(self, unit: AudioUnit, received_at: float) -> None:
        """From the source thread: never blocks; the oldest packet goes when full."""
        while True:
            try:
                self.queue.put_nowait((unit, received_at))
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.queue.get_nowait()
                    self.dropped += 1

    def stop(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.queue.get_nowait()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            started = time.thread_time()
            try:
                self._transcode(*item)
            except (av.FFmpegError, ValueError) as exc:
                self.errors += 1
                self._decoder = None  # start again on the next packet
                if self.errors <= 3:
                    log.warning("audio_transcode_error", error=str(exc))
            self.cpu_s += time.thread_time() - started

    def _open(self, unit: AudioUnit) -> None:
        format_ = unit.format
        decoder: Any = av.CodecContext.create(format_.codec, "r")
        decoder.sample_rate = format_.rate
        decoder.layout = "stereo" if format_.channels == 2 else "mono"
        if format_.extradata:
            decoder.extradata = format_.extradata
        encoder: Any = av.CodecContext.create("libopus", "w")
        encoder.sample_rate = RATE
        encoder.layout = "stereo"
        encoder.format = "s16"
        encoder.bit_rate = BITRATE
        encoder.time_base = Fraction(1, RATE)
        encoder.options = {"application": "lowdelay", "frame_duration": "20"}
        encoder.open()
        self._decoder, self._encoder = decoder, encoder
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=RATE,
                                            frame_size=FRAME)  # fmt: skip
        self._connection = unit.connection

    def _transcode(self, unit: AudioUnit, received_at: float) -> None:
        new = self._decoder is None or unit.connection != self._connection
        if new:
            self._open(unit)
        ticks = self.timeline.ticks(unit, received_at)
        if ticks is None:
            return  # held until the video knows the camera's clock
        if not new and self._next is not None:
            self._next += self.timeline.jumped  # the timeline moved to the camera's clock
        if new or self._next is None or abs(ticks - LOOKAHEAD - self._next) > RATE // 2:
            # a new stream or a gap: re-anchor; a packet holds sound from LOOKAHEAD earlier
            self._next = ticks - LOOKAHEAD
        packet = av.Packet(unit.data)
        packet.pts = unit.pts
        packet.time_base = unit.time_base
        meter = None if unit.format.codec in G711 else getattr(self.audio, "level", None)
        for frame in self._decoder.decode(packet):
            self.decoded += 1
            if meter is not None:
                meter.add_frame(frame)
            frame.pts = None
            for chunk in self._resampler.resample(frame):
                chunk.pts = None
                for out in self._encoder.encode(chunk):
                    self._send(bytes(out))

    def _send(self, data: bytes) -> None:
        assert self._next is not None
        ticks, self._next = self._next, self._next + FRAME
        self.encoded += 1
        with contextlib.suppress(RuntimeError):  # the loop closed
            self.loop.call_soon_threadsafe(self.audio.deliver_opus, data, ticks)
