"""The pipeline: source (through its buffering strategy) → skip decision → analysis in the
background → latest result attached → optional overlay → every sink.

Frames move on the event loop; decoding happens in the source thread and analysis in the
engine's executor, so the loop only moves references. ``update(...)`` swaps strategies and
settings while it runs, at a frame boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from streamlab.analysis import overlay
from streamlab.analysis.engine import AnalysisEngine
from streamlab.clock import now
from streamlab.config import StreamingConfig, load_config, updated
from streamlab.detection import AnalysisResult
from streamlab.errors import BufferClosedError, ConfigError
from streamlab.events import AnalysisSkipped, EventBus, FrameDelivered, SettingsChanged
from streamlab.frame import Frame
from streamlab.sinks import FrameSink
from streamlab.sources.base import Source, Subscription
from streamlab.sources.open import open_source
from streamlab.sources.url import default_name
from streamlab.strategies.buffering import buffering
from streamlab.strategies.skipping import SkipStrategy, skipping_from_config

log = structlog.get_logger("streamlab.pipeline")

LIVE_SETTINGS = frozenset(
    {"buffering", "skipping", "analyze", "overlay", "target_fps", "frame_skip_interval",
     "analysis_frame_interval", "detection_frame_interval", "analysis_lag_budget_ms",
     "quality", "codec", "network", "stage_delay_ms", "passthrough_join",
     "rtp_clock", "playout_delay", "start_bitrate", "audio", "lip_sync"}
)  # fmt: skip


class FrameTap:
    """A sink with a bounded queue (drops the oldest) for reading outgoing frames in code."""

    def __init__(self, maxsize: int = 8) -> None:
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, frame: Frame) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(frame)

    async def get(self) -> Frame:
        return await self.queue.get()

    def close(self) -> None:
        pass


class Pipeline:
    """A running stream: one source, strategies from ``config``, any number of sinks.

    ``Pipeline("rtsp://...", config=...)`` or ``Pipeline(source)``; ``async with`` or
    ``await start()`` / ``await stop()``.
    """

    def __init__(
        self,
        source: Source | str,
        *,
        config: StreamingConfig | None = None,
        name: str | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.config = config or load_config()
        if isinstance(source, str):
            self.bus = bus or EventBus()
            self.name = name or default_name(source)
            self.source = open_source(source, config=self.config, bus=self.bus, name=self.name)
        else:
            self.source = source
            self.bus = source.bus
            self.name = name or source.name
        self._validate_detectors(tuple(self.config.analyze))
        self.skip: SkipStrategy = skipping_from_config(self.config)
        self.engine = AnalysisEngine(
            self.name, self.bus, workers=self.config.analysis_workers,
            analysis_size=self.config.analysis_size, isolation=self.config.analysis_isolation,
        )  # fmt: skip
        self._sinks: list[FrameSink] = []
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, Any] = {}
        self._applied = asyncio.Event()
        self.frames_in = 0
        self.frames_out = 0
        self.skipped = 0
        self.busy_skips = 0
        self.started_at: float | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> Pipeline:
        """Subscribe to the source, start it and the frame loop. Idempotent."""
        if self.running:
            return self
        self._subscription = self.source.subscribe(buffering.create(self.config.buffering))
        self._refresh_pixels()
        await asyncio.get_running_loop().run_in_executor(None, self.source.start)
        self.started_at = now()
        self._task = asyncio.create_task(self._run(), name=f"pipeline:{self.name}")
        return self

    async def stop(self) -> None:
        """Stop the loop, the source and the analysis executor. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        await asyncio.get_running_loop().run_in_executor(None, self.source.stop)
        await self.engine.close()

    async def wait(self) -> None:
        """Until the source ends (files, finite synthetic) or the pipeline stops."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def __aenter__(self) -> Pipeline:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- sinks -------------------------------------------------------------------------

    def add_sink(self, sink: FrameSink) -> None:
        """Add a consumer of outgoing frames. A sink whose ``needs_pixels`` is False (an
        attribute or property, read at every frame; e.g. delivery with only passthrough
        viewers) lets an RTSP source skip decoding while nothing else (no analysis, no
        other sink) needs pixels; it then gets undecoded frames too."""
        if sink not in self._sinks:
            self._sinks = [*self._sinks, sink]
        self._refresh_pixels()

    def remove_sink(self, sink: FrameSink) -> None:
        self._sinks = [s for s in self._sinks if s is not sink]
        self._refresh_pixels()

    @property
    def needs_pixels(self) -> bool:
        """Whether analysis or any sink needs decoded frames."""
        return bool(self.config.analyze) or any(_needs_pixels(s) for s in self._sinks)

    def _refresh_pixels(self) -> None:
        if self._subscription is not None:
            self._subscription.takes_undecoded = True  # handed only to sinks that take them
            self._subscription.wants_pixels = self.needs_pixels

    def tap(self, maxsize: int = 8) -> FrameTap:
        """A new sink whose ``await tap.get()`` returns outgoing frames (newest kept)."""
        tap = FrameTap(maxsize)
        self.add_sink(tap)
        return tap

    # -- live update -------------------------------------------------------------------

    async def update(self, **changes: Any) -> StreamingConfig:
        """Validate ``changes`` with the config model and apply them at a frame boundary.

        Raises ConfigError (and changes nothing) for a bad value or a setting that cannot
        change while running.
        """
        fixed = sorted(set(changes) - LIVE_SETTINGS)
        if fixed:
            raise ConfigError(f"cannot change {fixed[0]!r} while running; restart the stream")
        base = self._pending.get("config", self.config)  # updates not yet applied stack up
        new = updated(base, **changes)
        self._validate_detectors(tuple(new.analyze))
        skip = skipping_from_config(new)
        if not self.running:
            self._apply(new, skip, changes)
            return new
        stacked = {**self._pending.get("changes", {}), **changes}
        self._pending = {"config": new, "skip": skip, "changes": stacked}
        self._applied.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):  # (wait_for may swallow a cancel on 3.11)
                await self._applied.wait()
        if self._pending:  # no frame came by: apply now
            self._apply_pending()
        return new

    def _validate_detectors(self, names: tuple[str, ...]) -> None:
        from streamlab.analysis.detectors import DetectorPool

        DetectorPool(1).validate(names)

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, {}
        if pending:
            self._apply(pending["config"], pending["skip"], pending["changes"])
        self._applied.set()

    def _apply(self, config: StreamingConfig, skip: SkipStrategy, changes: dict[str, Any]) -> None:
        old_buffering = self.config.buffering
        self.config, self.skip = config, skip
        if config.buffering != old_buffering and self._subscription is not None:
            old = self._subscription
            self._subscription = self.source.subscribe(buffering.create(config.buffering))
            old.close()
        self._refresh_pixels()
        log.info("settings_changed", stream=self.name, **{k: str(v) for k, v in changes.items()})
        self.bus.emit(SettingsChanged(self.name, dict(changes)))

    # -- the frame loop ----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if self._pending:
                self._apply_pending()
            subscription = self._subscription
            if subscription is None:
                return
            try:
                frame = await subscription.get()
            except BufferClosedError:
                if subscription is not self._subscription:
                    continue  # swapped for a new buffering strategy
                return
            self._process(frame)

    def _process(self, frame: Frame) -> None:
        frame.mark("dequeued")
        self.frames_in += 1
        self._refresh_pixels()  # a sink's needs may change with its viewers
        detectors = tuple(self.config.analyze)
        pixels = frame.has_pixels  # False only while no one needs pixels (or until a keyframe)
        if detectors and pixels:
            chosen = self.skip.select(frame, self.engine.state, detectors)
            if not chosen:
                self.skipped += 1
                self.bus.emit(AnalysisSkipped(self.name, frame.seq, "strategy"))
            elif not self.engine.submit(frame, chosen):
                self.busy_skips += 1
                self.bus.emit(AnalysisSkipped(self.name, frame.seq, "busy"))
        latest = self.engine.latest
        out = frame
        if latest is not None and detectors:
            self.engine.note_delivered(frame)
            if self.config.overlay and latest.detections and pixels:
                out = _overlaid(frame, latest)
            out.analysis = latest
        delay_ms = self.config.stage_delay_ms
        if delay_ms:
            out.mark("delay")
            asyncio.get_running_loop().call_later(delay_ms / 1000, self._deliver, out)
        else:
            self._deliver(out)

    def _deliver(self, out: Frame) -> None:
        if out.stages.get("delay") is not None and not self.running:
            return  # held by the calibration stage while the pipeline stopped
        out.mark("out")
        pixels = out.has_pixels
        for sink in self._sinks:
            if pixels or not _needs_pixels(sink):
                sink.offer(out)
        self.frames_out += 1
        state = self.engine.state
        self.bus.emit(
            FrameDelivered(
                self.name, out.seq, now() - out.captured_at,
                {k: v - out.captured_at for k, v in out.stages.items()},
                state.lag_frames if out.analysis is not None else None,
                state.lag_s if out.analysis is not None else None,
            )
        )  # fmt: skip

    # -- stats -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """A snapshot of what this pipeline measured (JSON-friendly)."""
        source = self.source.stats
        elapsed = (now() - self.started_at) if self.started_at else 0.0
        subscription = self._subscription
        engine = self.engine
        return {
            "name": self.name,
            "state": str(self.source.state.state),
            "source": self.source.display_url,
            "width": source.width,
            "height": source.height,
            "codec": source.codec,
            "transport": source.transport,
            "audio": source.audio.to_dict() if source.audio is not None else None,
            "buffering": self.config.buffering,
            "skipping": self.skip.name,
            "analyze": list(self.config.analyze),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "fps_out": round(self.frames_out / elapsed, 2) if elapsed > 0 else 0.0,
            "dropped_buffer": subscription.stats.dropped if subscription else 0,
            "skipped": self.skipped,
            "busy_skips": self.busy_skips,
            "analysed": engine.completed,
            "detections": engine.detections_total,
            "analysis_lag_frames": engine.state.lag_frames,
            "analysis_lag_ms": None
            if engine.state.lag_s is None
            else round(engine.state.lag_s * 1000, 1),
            "detector_ms": {
                k: round(1000 * v / max(engine.completed, 1), 3)
                for k, v in engine.detector_s_total.items()
            },
            "reconnects": source.reconnects,
            "stalls": source.stalls,
        }


def _overlaid(frame: Frame, result: AnalysisResult) -> Frame:
    """The frame with ``result`` drawn — by the first consumer that reads its pixels (in
    its own thread), not here: the loop only moves references."""
    if frame.width % 2 or frame.height % 2:  # no I420 for odd sizes: draw on BGR
        return frame.with_image(overlay.draw(frame.image, result))
    return frame.with_drawing(overlay.drawing(result))


def _needs_pixels(sink: object) -> bool:
    return bool(getattr(sink, "needs_pixels", True))
