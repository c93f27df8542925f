"""Live preview of a pipeline's outgoing frames: JPEG over the widget comm, acknowledged.

For when WebRTC is not possible (a remote Jupyter with no UDP path). Each frame is one
custom widget message with the JPEG as a binary buffer; the browser shows the newest on its
next animation frame and acknowledges every frame, and the kernel keeps at most
``max_in_flight`` (2) unacknowledged, so a slow front end never builds latency; nothing is
sent while no view is on screen. Encoding runs in an executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import deque
from typing import Any

import anywidget
import cv2
import traitlets

from streamlab.frame import Frame
from streamlab.lab.player import STATIC
from streamlab.lab.target import Target, resolve
from streamlab.lab.visibility import Views

ACK_TIMEOUT_S = 1.0  # an unacknowledged frame is forgotten after this (no view, closed view)
MAX_AHEAD_S = 0.1  # a frame encoded ahead is dropped when it waited longer than this
EXPECT_ACK_S = 0.2  # encode ahead only while the oldest frame in flight is younger


class LatestFrameSink:
    """A pipeline sink that keeps only the newest frame (one slot, newest wins)."""

    def __init__(self, on_frame: Any = None) -> None:
        self.frame: Frame | None = None
        self.offered = 0
        self._on_frame = on_frame

    def offer(self, frame: Frame) -> None:
        self.frame = frame
        self.offered += 1
        if self._on_frame is not None:
            self._on_frame()

    def close(self) -> None:
        self.frame = None


class Preview(anywidget.AnyWidget):
    """The pipeline's outgoing frames as JPEG in the notebook, at most ``fps`` a second.

    ``Preview(pipeline)`` (or a lab server, or ``(server, name)``) starts at once when an
    event loop runs (a notebook cell); ``preview.stats()`` gives fps shown, frames in
    flight and the roundtrip; ``await preview.stop()`` detaches it.
    """

    _esm = (STATIC / "preview.js").read_text()
    state = traitlets.Unicode("starting").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        target: Any,
        *,
        fps: float = 30,
        width: int | None = None,
        quality: int = 80,
        overlay: bool = True,
        max_in_flight: int = 2,
    ) -> None:
        if not 0.1 <= fps <= 60:
            raise ValueError(f"preview fps must be between 0.1 and 60, got {fps}")
        if not 1 <= max_in_flight <= 8:
            raise ValueError(f"max_in_flight must be between 1 and 8, got {max_in_flight}")
        super().__init__(width=int(width or 0))
        self.target: Target = resolve(target)
        self.pipeline = self.target.pipeline
        self.fps = fps
        self.quality = quality
        self.overlay = overlay
        self.max_in_flight = max_in_flight
        self.sent = 0
        self.shown = 0
        self.superseded = 0
        self.max_seen_in_flight = 0
        self._in_flight: dict[int, float] = {}
        self._shown_at: deque[float] = deque(maxlen=120)
        self._roundtrips: deque[float] = deque(maxlen=120)
        self.views = Views()
        self._wake = asyncio.Event()
        self.sink = LatestFrameSink(self._wake.set)
        self._task: asyncio.Task[None] | None = None
        self.on_msg(self._on_message)
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop()
            self.start()

    @property
    def widget(self) -> Preview:
        """The widget itself (kept for code written against ``LivePreview``)."""
        return self

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Attach to the pipeline and start sending (needs a running event loop)."""
        if self._task is not None:
            return
        self.pipeline.add_sink(self.sink)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lab-preview")

    async def stop(self) -> None:
        """Detach and stop sending; the view shows "stopped"."""
        task, self._task = self._task, None
        self.pipeline.remove_sink(self.sink)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.state = "stopped"

    # -- sending -----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_seq = -1
        next_due = 0.0
        # encoded ahead while both slots are in flight, sent the moment an ack frees one
        ahead: tuple[int, float, bytes] | None = None
        while True:
            self._wake.clear()
            running = self.target.running
            self.state = "streaming" if running else "stopped"
            now = time.monotonic()
            self._expire(now)
            frame = self.sink.frame
            wanted = running and self.views.visible is not False
            fresh = frame is not None and frame.seq != last_seq
            if ahead is not None and (not wanted or now - ahead[1] > MAX_AHEAD_S):
                ahead = None  # too old to show
            free = len(self._in_flight) < self.max_in_flight
            if wanted and free and ahead is not None and now >= next_due:
                seq, _, jpeg = ahead
                ahead = None
                next_due = self._send_frame(seq, jpeg)
                continue
            oldest = min(self._in_flight.values(), default=now)
            ack_soon = free or now - oldest < EXPECT_ACK_S  # else: no view answers now
            if wanted and fresh and ahead is None and ack_soon:
                assert frame is not None
                last_seq = frame.seq
                jpeg = await loop.run_in_executor(None, self._encode, frame)
                if jpeg:
                    ahead = (frame.seq, time.monotonic(), jpeg)
                continue
            timeout = max(0.001, next_due - now) if wanted and ahead and free else 0.25
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # lands as the event is set, and stop() would then wait for this loop forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _send_frame(self, seq: int, jpeg: bytes) -> float:
        """Send one JPEG; returns when the next may go (paced a little early: the source
        sets the real rate)."""
        index = self.sent
        self.sent += 1
        sent_at = time.monotonic()
        self._in_flight[index] = sent_at
        self.max_seen_in_flight = max(self.max_seen_in_flight, len(self._in_flight))
        self.send({"type": "frame", "index": index, "seq": seq}, buffers=[jpeg])
        return sent_at + 0.8 / self.fps

    def _encode(self, frame: Frame) -> bytes:
        image = frame.image
        result = frame.analysis
        if self.overlay and result is not None and not self.pipeline.config.overlay:
            from streamlab.analysis import overlay

            image = overlay.draw(image, result)
        width = self.width
        if width and image.shape[1] > width:
            height = round(image.shape[0] * width / image.shape[1])
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        return data.tobytes() if ok else b""

    def _expire(self, at: float) -> None:
        for index, sent_at in list(self._in_flight.items()):
            if at - sent_at > ACK_TIMEOUT_S:
                del self._in_flight[index]

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if self.views.note(content):
            self._wake.set()
            return
        if not isinstance(content, dict) or content.get("type") != "ack":
            return
        sent_at = self._in_flight.pop(content.get("index"), None)  # type: ignore[arg-type]
        at = time.monotonic()
        if content.get("shown"):
            self.shown += 1
            self._shown_at.append(at)
        else:
            self.superseded += 1
        if sent_at is not None:
            self._roundtrips.append(at - sent_at)
        self._wake.set()

    # -- stats -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """fps shown (last 2 s), frames in flight now and at most, roundtrip (ms), counts."""
        at = time.monotonic()
        recent = [t for t in self._shown_at if at - t <= 2.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0
        trips = list(self._roundtrips)
        return {
            "state": self.state,
            "fps_shown": round(fps, 1),
            "in_flight": len(self._in_flight),
            "max_in_flight": self.max_seen_in_flight,
            "roundtrip_ms": round(statistics.median(trips) * 1000, 1) if trips else None,
            "sent": self.sent,
            "shown": self.shown,
            "superseded": self.superseded,
        }

    def __repr__(self) -> str:
        return f"<Preview {self.target.label} {self.state}>"


LivePreview = Preview
