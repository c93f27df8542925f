"""Buffering strategies: what waits between a source thread and its consumer, and what is dropped.

Vocabulary from GStreamer's ``queue``: a limit in frames (``capacity``), an optional limit
in time (``max_age_ms``, checked when a frame is read) and a leak direction for a full
buffer: drop the oldest frame, drop the newest, or block the producer (lossless).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from streamlab.clock import now
from streamlab.errors import BufferClosedError, ConfigError
from streamlab.frame import Frame
from streamlab.registry import Registry


class WhenFull(StrEnum):
    """What a full buffer does with one more frame."""

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    BLOCK = "block"


class DropReason(StrEnum):
    FULL = "full"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class BufferPolicy:
    """A buffering strategy: bounded capacity, leak direction, optional age limit."""

    name: str
    capacity: int
    when_full: WhenFull
    max_age_ms: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.capacity <= 1000:
            raise ConfigError(f"capacity must be 1-1000 frames, got {self.capacity}")
        if self.max_age_ms is not None and not 1 <= self.max_age_ms <= 60_000:
            raise ConfigError(f"max age must be 1-60000 ms, got {self.max_age_ms}")

    def buffer(self, *, on_drop: DropCallback | None = None) -> FrameBuffer:
        """A new, empty buffer that follows this policy."""
        return FrameBuffer(self, on_drop=on_drop)


DropCallback = Callable[[Frame, DropReason], None]

buffering: Registry[BufferPolicy] = Registry("buffering")


@buffering.register("latest")
def latest() -> BufferPolicy:
    """One slot, newest wins: lowest latency, drops whatever the consumer did not take."""
    return BufferPolicy("latest", 1, WhenFull.DROP_OLDEST)


@buffering.register("drop_oldest")
def drop_oldest(n: int = 4) -> BufferPolicy:
    """N slots; when full the oldest frame is dropped (GStreamer leaky=downstream)."""
    return BufferPolicy(f"drop_oldest:{n}", n, WhenFull.DROP_OLDEST)


@buffering.register("drop_newest")
def drop_newest(n: int = 4) -> BufferPolicy:
    """N slots; when full the incoming frame is dropped (GStreamer leaky=upstream)."""
    return BufferPolicy(f"drop_newest:{n}", n, WhenFull.DROP_NEWEST)


@buffering.register("block")
def block(n: int = 8) -> BufferPolicy:
    """N slots; when full the producer waits: lossless back-pressure."""
    return BufferPolicy(f"block:{n}", n, WhenFull.BLOCK)


@buffering.register("max_age")
def max_age(ms: float = 200) -> BufferPolicy:
    """Up to 30 frames; frames older than MS milliseconds are dropped when read."""
    return BufferPolicy(f"max_age:{ms:g}", 30, WhenFull.DROP_OLDEST, max_age_ms=ms)


@dataclass(slots=True)
class BufferStats:
    """Counters of one buffer. ``dropped_full + dropped_stale`` is everything it dropped."""

    put: int = 0
    delivered: int = 0
    dropped_full: int = 0
    dropped_stale: int = 0
    blocked_s: float = 0.0

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_stale


class FrameBuffer:
    """A bounded hand-off from a producer thread to one asyncio consumer.

    ``put`` is thread-safe and never touches the event loop except to wake a waiting
    consumer; ``get`` awaits the next frame. Every drop is counted and reported.
    """

    def __init__(self, policy: BufferPolicy, *, on_drop: DropCallback | None = None) -> None:
        self.policy = policy
        self.stats = BufferStats()
        self._on_drop = on_drop
        self._frames: deque[Frame] = deque(maxlen=policy.capacity)
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._waiter_loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, frame: Frame, *, timeout: float | None = None) -> bool:
        """Offer a frame; returns False when this frame itself was dropped or not taken.

        With the ``block`` policy this waits for space (up to ``timeout`` seconds).
        """
        dropped: Frame | None = None
        with self._lock:
            if self._closed:
                return False
            self.stats.put += 1
            if len(self._frames) >= self.policy.capacity:
                when_full = self.policy.when_full
                if when_full is WhenFull.BLOCK:
                    started = now()
                    self._space.wait_for(
                        lambda: self._closed or len(self._frames) < self.policy.capacity,
                        timeout,
                    )
                    self.stats.blocked_s += now() - started
                    if self._closed or len(self._frames) >= self.policy.capacity:
                        return False
                elif when_full is WhenFull.DROP_NEWEST:
                    dropped = frame
                else:
                    dropped = self._frames.popleft()
                if dropped is not None:
                    self.stats.dropped_full += 1
            if dropped is not frame:
                self._frames.append(frame)
                self._wake()
        if dropped is not None and self._on_drop is not None:
            self._on_drop(dropped, DropReason.FULL)
        return dropped is not frame

    def get_nowait(self) -> Frame | None:
        """The next fresh frame, or None when there is none right now."""
        stale: list[Frame] = []
        with self._lock:
            frame = self._pop_fresh(stale)
        self._report_stale(stale)
        return frame

    async def get(self) -> Frame:
        """Await the next fresh frame. Raises BufferClosedError once closed and drained."""
        while True:
            stale: list[Frame] = []
            with self._lock:
                frame = self._pop_fresh(stale)
                if frame is None:
                    if self._closed:
                        raise BufferClosedError("frame buffer closed")
                    loop = asyncio.get_running_loop()
                    self._waiter = loop.create_future()
                    self._waiter_loop = loop
                    waiter = self._waiter
            self._report_stale(stale)
            if frame is not None:
                return frame
            try:
                await waiter
            finally:
                with self._lock:
                    self._waiter = None

    def close(self) -> None:
        """Close: wakes the consumer and any blocked producer. Idempotent."""
        with self._lock:
            self._closed = True
            self._space.notify_all()
            self._wake()

    def clear(self) -> int:
        """Drop everything queued (counted as full drops); returns how many."""
        with self._lock:
            dropped = list(self._frames)
            self._frames.clear()
            self.stats.dropped_full += len(dropped)
            self._space.notify_all()
        if self._on_drop is not None:
            for frame in dropped:
                self._on_drop(frame, DropReason.FULL)
        return len(dropped)

    def _pop_fresh(self, stale: list[Frame]) -> Frame | None:
        max_age = self.policy.max_age_ms
        while self._frames:
            frame = self._frames.popleft()
            self._space.notify()
            if max_age is not None and (now() - frame.captured_at) * 1000.0 > max_age:
                self.stats.dropped_stale += 1
                stale.append(frame)
                continue
            self.stats.delivered += 1
            return frame
        return None

    def _report_stale(self, stale: list[Frame]) -> None:
        if self._on_drop is not None:
            for frame in stale:
                self._on_drop(frame, DropReason.STALE)

    def _wake(self) -> None:
        waiter, loop = self._waiter, self._waiter_loop
        if waiter is None or loop is None or waiter.done():
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, waiter)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
