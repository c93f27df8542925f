"""Read a source for a while and report what was measured (the engine of ``streamlab probe``)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

from streamlab.clock import now
from streamlab.config import StreamingConfig, load_config
from streamlab.errors import BufferClosedError, SourceError
from streamlab.sources.open import open_source

_FIRST_FRAME_GRACE_S = 2.0


@dataclass(slots=True)
class ProbeReport:
    """What ``probe`` measured. ``fps`` is measured at the consumer, not announced."""

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
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        data.update(extra)
        return data


async def probe(
    url: str,
    *,
    frames: int | None = None,
    duration: float | None = None,
    buffering: str = "latest",
    config: StreamingConfig | None = None,
    retry: bool = False,
) -> ProbeReport:
    """Read ``url`` until ``frames`` frames arrived or ``duration`` seconds passed.

    Without ``retry`` a source that cannot connect fails at once with a SourceError; with it
    the source keeps reconnecting until the time is up.
    """
    if frames is None and duration is None:
        frames = 100
    if frames is not None and frames < 1:
        raise SourceError("--frames must be at least 1")
    if duration is not None and duration <= 0:
        raise SourceError("--duration must be positive")
    config = config or load_config()
    source = open_source(url, config=config, realtime=True)
    if hasattr(source, "retry"):
        source.retry = retry
    subscription = source.subscribe(buffering)
    report = ProbeReport(url=source.display_url)
    deadline = None if duration is None else now() + duration
    limit = deadline or now() + config.rtsp_timeout_ms / 1000.0 + _FIRST_FRAME_GRACE_S
    started = now()
    first_at = last_at = None
    count = 0
    source.start()
    try:
        while frames is None or count < frames:
            remaining = (deadline if deadline else limit) - now()
            if remaining <= 0:
                break
            try:
                frame = await asyncio.wait_for(subscription.get(), remaining)
            except (TimeoutError, BufferClosedError):
                break
            count += 1
            last_at = now()
            if first_at is None:
                first_at = last_at
                if deadline is None:
                    limit = float("inf")
            del frame
    finally:
        await asyncio.get_running_loop().run_in_executor(None, source.stop)
    stats = source.stats
    report.width, report.height, report.codec = stats.width, stats.height, stats.codec
    report.frames = count
    report.first_frame_s = None if first_at is None else round(first_at - started, 4)
    if first_at is not None and last_at is not None and count > 1 and last_at > first_at:
        report.fps = round((count - 1) / (last_at - first_at), 2)
    report.max_gap_s = round(stats.max_gap_s, 4)
    report.reconnects, report.stalls = stats.reconnects, stats.stalls
    report.dropped = subscription.stats.dropped
    report.state = str(source.state.state)
    if stats.errors:
        report.error = stats.errors[-1]
    if count == 0:
        with contextlib.suppress(Exception):
            source.stop()
        raise SourceError(report.error or f"no frames from {source.display_url}")
    return report
