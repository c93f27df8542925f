"""Video files via PyAV: demux + decode in the source thread, paced in real time or not."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from streamlab.clock import now
from streamlab.errors import SourceError
from streamlab.events import EventBus
from streamlab.frame import Frame
from streamlab.sources.base import Source
from streamlab.sources.url import printable


class FileSource(Source):
    """Reads a video file; ``realtime`` paces by pts, ``loop`` starts over at the end.

    Audio streams are ignored. H.264 access units are not attached for passthrough: MP4
    stores them length-prefixed (AVCC), not Annex B — serve the file through the test
    camera (``streamlab camera --source FILE``) to get the camera path.
    """

    scheme = "file"

    def __init__(
        self,
        path: str | Path,
        *,
        realtime: bool = True,
        loop: bool = False,
        bus: EventBus | None = None,
        name: str | None = None,
    ) -> None:
        self.path = Path(str(path).removeprefix("file://"))
        if not self.path.is_file():
            raise SourceError(f"video file not found: {printable(str(self.path))}")
        super().__init__(name or self.path.name, bus=bus)
        self.realtime, self.loop = realtime, loop
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise SourceError(f"{self.path} has no video stream")
                stream = container.streams.video[0]
                self.stats.codec = stream.codec_context.name
                self.stats.width, self.stats.height = stream.width, stream.height
                rate = stream.average_rate or stream.guessed_rate
                self.stats.nominal_fps = float(rate) if rate else 0.0
        except av.FFmpegError as exc:
            raise SourceError(f"cannot read video file {self.path}: {exc}") from None

    def _run(self) -> None:
        started = now()
        offset = 0.0
        while not self._stopping.is_set():
            duration = self._play_once(started, offset)
            if not self.loop or duration is None:
                return
            offset += duration

    def _play_once(self, started: float, offset: float) -> float | None:
        """Play the file once; returns its duration in seconds (None when stopped)."""
        last = 0.0
        try:
            container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise SourceError(f"cannot read video file {self.path}: {exc}") from None
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            period = 1.0 / self.stats.nominal_fps if self.stats.nominal_fps else 0.0
            for video in container.decode(stream):
                if self._stopping.is_set():
                    return None
                known = video.pts is not None and video.time_base is not None
                t = float(video.pts * video.time_base) if known else last + period  # type: ignore[operator]
                last = t
                if self.realtime:
                    delay = started + offset + t - now()
                    if delay > 0 and self._stopping.wait(delay):
                        return None
                frame = Frame.from_av(video, seq=self._next_seq())
                frame.time_base = (
                    Fraction(video.time_base) if video.time_base else Fraction(1, 90000)
                )
                frame.source_codec = self.stats.codec
                self._publish(frame)
        return last + period
