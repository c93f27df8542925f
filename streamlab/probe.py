"""Read a source for a while and report what was measured (the engine of ``streamlab probe``).

The source runs through a real ``Pipeline``, so ``analyze``/``skipping`` report the analysis
stats (analysed frames, detections, detector ms, analysis lag) next to ``fps``.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

from streamlab.clock import now
from streamlab.config import StreamingConfig, load_config
from streamlab.errors import SourceError
from streamlab.frame import Frame

_FIRST_FRAME_GRACE_S = 2.0


@dataclass(slots=True)
class ProbeReport:
    """What ``probe`` measured. ``fps`` is measured at the consumer, not announced.

    ``error`` is the error the source ended in (None when it was streaming at the end);
    ``recovered`` lists the last error of each outage it came back from. ``transport`` is
    the RTSP lower transport in use (``tcp``/``udp``; empty for other sources). ``audio``
    is the camera's audio stream (codec, rate, channels), None when it sends none."""

    url: str
    width: int = 0
    height: int = 0
    codec: str = ""
    fps: float = 0.0
    frames: int = 0
    first_frame_s: float | None = None
    max_gap_s: float = 0.0
    reconnects: int = 0
    stalls: int = 0
    dropped: int = 0
    state: str = ""
    transport: str = ""
    audio: dict[str, Any] | None = None
    error: str | None = None
    recovered: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(data.pop("extra"))
        return data


class _CountingSink:
    """Counts outgoing frames and their arrival times; signals when enough have come."""

    def __init__(self, wanted: int | None) -> None:
        self.wanted = wanted
        self.count = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.done = asyncio.Event()

    def offer(self, frame: Frame) -> None:
        self.count += 1
        self.last_at = now()
        if self.first_at is None:
            self.first_at = self.last_at
        if self.wanted is not None and self.count >= self.wanted:
            self.done.set()

    def close(self) -> None:
        self.done.set()


async def probe(
    url: str,
    *,
    frames: int | None = None,
    duration: float | None = None,
    buffering: str = "latest",
    analyze: list[str] | None = None,
    skipping: str | None = None,
    config: StreamingConfig | None = None,
    retry: bool = False,
) -> ProbeReport:
    """Read ``url`` until ``frames`` frames arrived or ``duration`` seconds passed.

    Without ``retry`` a source that cannot connect fails at once with a SourceError; with
    it the source keeps reconnecting until the time is up.
    """
    from streamlab.pipeline import Pipeline

    if frames is None and duration is None:
        frames = 100
    if frames is not None and frames < 1:
        raise SourceError("--frames must be at least 1")
    if duration is not None and duration <= 0:
        raise SourceError("--duration must be positive")
    changes: dict[str, Any] = {"buffering": buffering}
    if analyze is not None:
        changes["analyze"] = analyze
    if skipping is not None:
        changes["skipping"] = skipping
    base = config or load_config()
    config = load_config(**{**base.model_dump(), **changes})
    pipeline = Pipeline(url, config=config)
    source = pipeline.source
    if hasattr(source, "retry"):
        source.retry = retry
    sink = _CountingSink(frames)
    pipeline.add_sink(sink)
    started = now()
    limit = (
        duration if duration is not None else config.rtsp_timeout_ms / 1000 + _FIRST_FRAME_GRACE_S
    )
    await pipeline.start()
    try:
        ended = asyncio.ensure_future(pipeline.wait())
        waiting = asyncio.ensure_future(sink.done.wait())
        deadline = started + limit
        while not waiting.done() and not ended.done():
            remaining = deadline - now()
            if remaining <= 0:
                break
            await asyncio.wait({waiting, ended}, timeout=min(remaining, 0.25),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if duration is None and sink.first_at is not None:
                deadline = float("inf")  # connected: now wait for the frame count
        for task in (waiting, ended):
            task.cancel()
        stats = pipeline.stats()
    finally:
        await pipeline.stop()
    report = _report(source.display_url, source.stats, sink, stats, started)
    report.state = str(source.state.state)
    if analyze:
        report.extra = {
            "analysed": stats["analysed"],
            "detections": stats["detections"],
            "detector_ms": stats["detector_ms"],
            "analysis_lag_frames": stats["analysis_lag_frames"],
            "analysis_lag_ms": stats["analysis_lag_ms"],
            "skipped": stats["skipped"] + stats["busy_skips"],
            "skipping": stats["skipping"],
        }
    if sink.count == 0:
        raise SourceError(report.error or f"no frames from {source.display_url}")
    return report


def _report(
    url: str, source: Any, sink: _CountingSink, stats: dict[str, Any], started: float
) -> ProbeReport:
    report = ProbeReport(url=url, width=source.width, height=source.height, codec=source.codec)
    report.frames = sink.count
    if sink.first_at is not None:
        report.first_frame_s = round(sink.first_at - started, 4)
        if sink.last_at is not None and sink.count > 1 and sink.last_at > sink.first_at:
            report.fps = round((sink.count - 1) / (sink.last_at - sink.first_at), 2)
    report.max_gap_s = round(source.max_gap_s, 4)
    report.reconnects, report.stalls = source.reconnects, source.stalls
    report.dropped = stats["dropped_buffer"]
    report.error = source.outage
    report.recovered = list(source.recovered)
    report.transport = source.transport
    report.audio = source.audio.to_dict() if source.audio is not None else None
    return report
