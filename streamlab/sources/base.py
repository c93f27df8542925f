"""The source contract: demux/decode in a thread, fan-out into each subscriber's buffer."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import structlog

from streamlab.clock import now
from streamlab.errors import BufferClosedError
from streamlab.events import EventBus, FrameCaptured, FrameDropped
from streamlab.frame import EncodedUnit, Frame
from streamlab.manager import StreamState, StreamStateMachine
from streamlab.sources.audio import AudioFormat, AudioListener, AudioUnit
from streamlab.strategies.buffering import (
    BufferPolicy,
    BufferStats,
    DropReason,
    FrameBuffer,
    buffering,
)

log = structlog.get_logger("streamlab.source")

UnitListener = Callable[[EncodedUnit, float], None]


@dataclass(slots=True)
class SourceStats:
    """What a source measured about itself."""

    frames: int = 0
    width: int = 0
    height: int = 0
    codec: str = ""
    nominal_fps: float = 0.0
    started_at: float = 0.0
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    max_gap_s: float = 0.0
    reconnects: int = 0
    stalls: int = 0
    connects: int = 0
    warm_starts: int = 0  # decoding resumed mid-group from held packets
    packets: int = 0  # demuxed, of any kind (frames count only pictures after a keyframe)
    keyframes: int = 0  # demuxed packets flagged as keyframes
    transport: str = ""
    audio: AudioFormat | None = None  # the camera's audio stream (None: it sends none)
    audio_packets: int = 0
    errors: list[str] = field(default_factory=list)
    outage: str | None = None  # last error of the outage going on now, if any
    recovered: list[str] = field(default_factory=list)  # last error of each outage survived

    @property
    def first_frame_s(self) -> float | None:
        if self.first_frame_at is None:
            return None
        return self.first_frame_at - self.started_at


class Subscription:
    """One consumer's view of a source: its own bounded buffer, read with ``await get()``."""

    def __init__(self, source: Source, buffer: FrameBuffer) -> None:
        self.source = source
        self.buffer = buffer
        self.wants_pixels = True
        """False: this consumer only needs each frame's clock and access unit, so a source
        that can skip decoding (RTSP) may do so while no subscriber wants pixels."""
        self.takes_undecoded = False
        """True: also give this consumer the frames that were not decoded (``has_pixels``
        False) — while nobody wants pixels, and until the keyframe decoding resumes at."""

    @property
    def stats(self) -> BufferStats:
        return self.buffer.stats

    async def get(self) -> Frame:
        """The next frame; raises BufferClosedError when the source stopped for good."""
        return await self.buffer.get()

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Frame]:
        while True:
            try:
                yield await self.buffer.get()
            except BufferClosedError:
                return

    def close(self) -> None:
        """Stop receiving frames. Idempotent."""
        self.source.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Source(ABC):
    """A producer of frames that runs its blocking work in one daemon thread.

    Subclasses implement ``_run`` and call ``_publish`` for every decoded frame, checking
    ``_stopping`` often. ``start``/``stop`` are idempotent; ``stop`` joins the thread.
    """

    scheme = "?"

    def __init__(self, name: str, *, bus: EventBus | None = None) -> None:
        self.name = name
        self.bus = bus or EventBus()
        self.state = StreamStateMachine(name, self.bus)
        self.stats = SourceStats()
        self._subscribers: list[Subscription] = []
        self._unit_listeners: list[UnitListener] = []
        self._audio_listeners: list[AudioListener] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._life = threading.Lock()  # start() and stop() from different threads, in turn
        self._seq = 0
        self._resync = False

    # -- public ------------------------------------------------------------------------

    @property
    def display_url(self) -> str:
        """The URL safe to show: no credentials."""
        return self.name

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def subscribe(self, policy: BufferPolicy | str = "latest") -> Subscription:
        """A new consumer with its own buffer of the given buffering strategy."""
        chosen = buffering.create(policy) if isinstance(policy, str) else policy

        def dropped(frame: Frame, reason: DropReason) -> None:
            self.bus.emit(FrameDropped(self.name, frame.seq, "buffer", str(reason)))

        subscription = Subscription(self, chosen.buffer(on_drop=dropped))
        with self._lock:
            self._subscribers = [*self._subscribers, subscription]
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s is not subscription]
        subscription.buffer.close()

    def add_unit_listener(self, listener: UnitListener) -> Callable[[], None]:
        """Call ``listener(unit, received_at)`` from the source thread for every encoded
        access unit, as soon as it is read and before it is decoded (for passthrough).
        Sources that do not read encoded video never call it. Returns a remover."""
        with self._lock:
            self._unit_listeners = [*self._unit_listeners, listener]

        def remove() -> None:
            with self._lock:
                self._unit_listeners = [x for x in self._unit_listeners if x is not listener]

        return remove

    def audio_known(self) -> bool:
        """Whether ``stats.audio`` says for sure if the source has audio (an RTSP camera
        knows only once it first connected); True for sources that know from the start."""
        return True

    def add_audio_listener(self, listener: AudioListener) -> Callable[[], None]:
        """Call ``listener(unit, received_at)`` from the source thread for every encoded
        audio packet as it is demuxed (it must only queue it). Sources without audio
        never call it. Returns a remover."""
        with self._lock:
            self._audio_listeners = [*self._audio_listeners, listener]

        def remove() -> None:
            with self._lock:
                self._audio_listeners = [x for x in self._audio_listeners if x is not listener]

        return remove

    def _forward_audio(self, unit: AudioUnit) -> None:
        self.stats.audio_packets += 1
        received = now()
        for listener in self._audio_listeners:
            listener(unit, received)

    def _audio_packet(self, packet: Any, audio: Any) -> None:
        """Hand a demuxed PyAV audio packet of stream ``audio`` on at once, as an AudioUnit
        of the current connection (``stats.connects``): it never waits for video decoding."""
        format_ = self.stats.audio
        if format_ is None or not self._audio_listeners:
            self.stats.audio_packets += 1
            return
        time_base = Fraction(packet.time_base or audio.time_base or Fraction(1, format_.rate))
        unit = AudioUnit(bytes(packet), format_, packet.pts, time_base, self.stats.connects)
        self._forward_audio(unit)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def decode(self) -> bool:
        """Whether any subscriber wants pixels (else sources that can, decode nothing)."""
        return any(s.wants_pixels for s in self._subscribers)

    def start(self) -> None:
        """Start the source thread (no-op when running)."""
        with self._life:
            if self.running:
                return
            self._stopping.clear()
            self.stats.started_at = now()
            if self.state.state is not StreamState.CONNECTING:
                self.state.to_if_allowed(StreamState.CONNECTING, "start")
            thread = threading.Thread(
                target=self._thread_main, name=f"source:{self.name}", daemon=True
            )
            thread.start()
            self._thread = thread

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, close every subscriber's buffer. Idempotent."""
        with self._life:  # a start() under way finishes first; its thread then sees the stop
            self._stopping.set()
            thread, self._thread = self._thread, None
        self._interrupt()
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
        for subscription in subscribers:
            subscription.buffer.close()  # also releases a producer blocked by block:N
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("source_thread_still_running", source=self.display_url)
        self.state.to_if_allowed(StreamState.STOPPED, "stop")

    # -- for subclasses ----------------------------------------------------------------

    @abstractmethod
    def _run(self) -> None:
        """Produce frames until ``self._stopping`` is set or the source ends."""

    def _interrupt(self) -> None:  # noqa: B027 - optional hook
        """Unblock a blocking read so that ``_run`` sees ``_stopping`` (optional)."""

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _decoding(self, keyframe: bool) -> bool:
        """For sources that read encoded video: decode this packet? No while nobody wants
        pixels; after such a pause, not until the next keyframe (references are gone)."""
        if not self.decode:
            self._resync = True
            return False
        if self._resync and not keyframe:
            return False
        self._resync = False
        return True

    def _publish(self, frame: Frame) -> None:
        """Hand one frame to every subscriber's buffer and update the stats."""
        stats = self.stats
        at = frame.captured_at
        if stats.first_frame_at is None:
            stats.first_frame_at = now()
        if stats.last_frame_at is not None:
            stats.max_gap_s = max(stats.max_gap_s, at - stats.last_frame_at)
        stats.last_frame_at = at
        stats.frames += 1
        stats.width, stats.height = frame.width, frame.height
        if stats.outage is not None:
            stats.recovered = [*stats.recovered[-9:], stats.outage]
            stats.outage = None
        if self.state.state is not StreamState.STREAMING:
            self.state.to_if_allowed(StreamState.STREAMING, "first frame")
        self.bus.emit(FrameCaptured(self.name, frame.seq, frame.width, frame.height))
        frame.mark("captured", at)
        pixels = frame.has_pixels
        for subscription in self._subscribers:
            if pixels or subscription.takes_undecoded:
                subscription.buffer.put(frame)

    def _thread_main(self) -> None:
        try:
            self._run()
            if not self._stopping.is_set():
                self.state.to_if_allowed(StreamState.STOPPED, "ended")
        except Exception as exc:
            self.stats.errors.append(str(exc))
            self.stats.outage = str(exc)
            log.info("source_failed", source=self.display_url, error=str(exc))
            self.state.to_if_allowed(StreamState.ERROR, str(exc))
        finally:
            with self._lock:
                subscribers = list(self._subscribers)
            for subscription in subscribers:
                subscription.buffer.close()
