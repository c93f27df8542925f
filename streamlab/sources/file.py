"""Video files via PyAV: demux + decode in the source thread, paced in real time or not.

The file's first audio track is read beside the video, the way an RTSP camera's is: each
encoded packet is handed to the audio listeners (never decoded here), at its own pts time
when ``realtime``, never held back by a video frame that is waiting for its turn.
"""

from __future__ import annotations

import math
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from streamlab.clock import now
from streamlab.errors import SourceError
from streamlab.events import EventBus
from streamlab.frame import Frame
from streamlab.sources.audio import audio_format
from streamlab.sources.base import Source
from streamlab.sources.url import printable

MAX_AHEAD = 256  # packets of one stream read ahead while waiting for the other's


class FileSource(Source):
    """Reads a video file; ``realtime`` paces by pts, ``loop`` starts over at the end.

    The first audio track (AAC, Opus, G.711, ...) goes to the audio listeners packet by
    packet, as an RTSP camera's does; ``stats.audio`` is None for a file without audio.
    Every play of the file counts as a connect (``stats.connects``), so a loop starts a new
    audio connection and the delivery re-anchors its clock. H.264 access units are not
    attached for passthrough: MP4 stores them length-prefixed (AVCC), not Annex B — serve
    the file through the test camera (``streamlab camera --source FILE``) to get the camera
    path.
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
                audio = container.streams.audio[0] if container.streams.audio else None
                self.stats.audio = audio_format(audio) if audio is not None else None
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
        self.stats.connects += 1
        try:
            container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise SourceError(f"cannot read video file {self.path}: {exc}") from None
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            audio = container.streams.audio[0] if container.streams.audio else None
            self.stats.audio = audio_format(audio) if audio is not None else None
            return self._play(container, stream, audio, started + offset)

    def _play(self, container: Any, stream: Any, audio: Any, origin: float) -> float | None:
        """Demux video and audio; each goes out at its own media time (``origin`` + pts).

        Packets wait in a queue per stream: a file interleaves its streams in chunks (an
        MP4 may hold 0.8 s of video before the audio of that time), so the demuxer reads
        ahead, compressed packets only and at most ``MAX_AHEAD`` of a stream, until the
        other stream's next packet is in. Video is decoded one packet at a time, only while
        no picture is waiting (as the source always did); an audio packet due meanwhile
        waits at most for that one decode call, never for a picture."""
        period = 1.0 / self.stats.nominal_fps if self.stats.nominal_fps else 0.0
        # bounded by the reading rule below (at most MAX_AHEAD of one stream read ahead)
        sound: deque[tuple[float, Any]] = deque(maxlen=MAX_AHEAD + 1)  # (media time s, packet)
        packets: deque[Any] = deque(maxlen=MAX_AHEAD + 1)  # video packets not yet decoded
        pictures: deque[tuple[float, av.VideoFrame]] = deque(maxlen=MAX_AHEAD)  # decoded
        last = 0.0  # media time of the last picture
        end = 0.0  # media time the file's pictures and sound end
        heard = 0.0  # media time of the last audio packet
        reader = container.demux(*(s for s in (stream, audio) if s is not None))
        exhausted = False
        while not self._stopping.is_set():
            clock = now() - origin if self.realtime else math.inf
            while sound and sound[0][0] <= clock:
                self._audio_packet(sound.popleft()[1], audio)
            if pictures and pictures[0][0] <= clock:
                self._picture(pictures.popleft()[1])
                continue
            want_video = not pictures and not packets and len(sound) < MAX_AHEAD
            want_audio = audio is not None and not sound and len(packets) < MAX_AHEAD
            if not exhausted and (want_video or want_audio):
                packet = next(reader, None)
                if packet is None:
                    exhausted = True
                elif packet.stream is not audio:
                    packets.append(packet)
                elif packet.size:
                    t = _seconds(packet.pts, packet)
                    heard = t if t is not None else heard
                    end = max(end, heard + (_seconds(packet.duration, packet) or 0.0))
                    sound.append((heard, packet))
                continue
            if not pictures and packets:
                packet = packets.popleft()
                if packet.size:
                    self.stats.packets += 1
                    self.stats.keyframes += bool(packet.is_keyframe)
                for video in packet.decode():  # an empty packet flushes the decoder
                    t = _seconds(video.pts, video)
                    last = t if t is not None else last + period
                    end = max(end, last + period)
                    pictures.append((last, video))
                continue
            due = min(x[0][0] for x in (sound, pictures) if x) if sound or pictures else None
            if due is None:  # read to the end (else a queue would want a packet), all out
                return end
            if self._stopping.wait(due - clock):
                return None
        return None

    def _picture(self, video: av.VideoFrame) -> None:
        frame = Frame.from_av(video, seq=self._next_seq())
        frame.time_base = Fraction(video.time_base) if video.time_base else Fraction(1, 90000)
        frame.source_codec = self.stats.codec
        self._publish(frame)


def _seconds(value: int | None, timed: Any) -> float | None:
    """``value`` (pts, dts or duration) of a PyAV packet or frame in seconds, if known."""
    if value is None or timed.time_base is None:
        return None
    return float(value * timed.time_base)
