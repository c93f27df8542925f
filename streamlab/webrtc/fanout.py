"""Encode once, serve many: a pipeline sink that feeds every viewer of one stream.

Transcoding codecs encode each frame once in one encoder thread (latest frame wins while
it is busy) and hand the same packets to every viewer's bounded queue; a new viewer or a
PLI/FIR asks for a keyframe. Passthrough forwards every access unit of the camera straight
from the source thread, before it is decoded (decoding goes on in parallel, for analysis
only); a viewer joining mid-stream waits for the camera's next keyframe. Analysis results
go to each viewer's data channel as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import av
import structlog

from streamlab.clock import now
from streamlab.config import StreamingConfig
from streamlab.events import EventBus, FrameDropped, QualityChanged
from streamlab.frame import EncodedUnit, Frame
from streamlab.sources.base import Source
from streamlab.strategies.codec import CodecStrategy, codecs
from streamlab.strategies.quality import Level, Load, QualityStrategy, quality
from streamlab.webrtc.encoder import TIME_BASE, SharedEncoder
from streamlab.webrtc.track import ViewerTrack

log = structlog.get_logger("streamlab.webrtc")

H264_SPS = 7


@dataclass(eq=False)
class Viewer:
    """One connected viewer of a stream."""

    id: str
    track: ViewerTrack
    channel: Any = None
    connected_at: float = field(default_factory=now)
    bandwidth_bps: int | None = None


class Fanout:
    """The sink between a pipeline and its viewers (``pipeline.add_sink(fanout)``)."""

    def __init__(self, stream: str, config: StreamingConfig, bus: EventBus) -> None:
        self.stream = stream
        self.bus = bus
        self.codec: CodecStrategy = codecs.create(config.codec)
        self.quality: QualityStrategy = quality.create(config.quality)
        self.viewer_queue = config.viewer_queue
        self.viewers: dict[str, Viewer] = {}
        self.encoder = (
            SharedEncoder(self.codec.encoder, threads=config.encoder_threads)
            if self.codec.encoder
            else None
        )
        self._executor: ThreadPoolExecutor | None = None
        self._encoding = False
        self._waiting: Frame | None = None
        self._keyframe_wanted = True
        self._remove_listener: Callable[[], None] | None = None
        self._t0: float | None = None
        self.level: Level | None = None
        self.frames_encoded = 0
        self.frames_sent = 0
        self.frames_skipped = 0
        self.bytes_sent = 0

    # -- viewers -----------------------------------------------------------------------

    def add_viewer(self, viewer_id: str) -> Viewer:
        viewer = Viewer(viewer_id, ViewerTrack(self.viewer_queue))
        self.viewers[viewer_id] = viewer
        self.request_keyframe()
        return viewer

    def remove_viewer(self, viewer_id: str) -> None:
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is not None:
            viewer.track.stop()

    def request_keyframe(self) -> None:
        """Ask for an intra frame (ignored in passthrough: the camera sends its own)."""
        self._keyframe_wanted = True

    # -- the sink ----------------------------------------------------------------------

    def attach_units(self, source: Source) -> None:
        """Passthrough: take the camera's access units straight from the source thread,
        before they are decoded, so forwarding never waits for decode or analysis."""
        if not self.codec.passthrough or self._remove_listener is not None:
            return
        loop = asyncio.get_running_loop()

        def on_unit(unit: EncodedUnit, received_at: float) -> None:
            if self.viewers:
                loop.call_soon_threadsafe(self._pass_through, unit, received_at)

        self._remove_listener = source.add_unit_listener(on_unit)

    def offer(self, frame: Frame) -> None:
        if not self.viewers:
            return
        self._send_analysis(frame)
        if self.codec.passthrough:
            return
        if self._encoding:
            if self._waiting is not None:
                self.frames_skipped += 1
                self.bus.emit(FrameDropped(self.stream, self._waiting.seq, "encoder", "busy"))
            self._waiting = frame
            return
        self._start_encode(frame)

    def close(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        for viewer_id in list(self.viewers):
            self.remove_viewer(viewer_id)
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    # -- transcoding -------------------------------------------------------------------

    def _pts(self, frame: Frame) -> int:
        return self._ticks(frame.captured_at)

    def _ticks(self, at: float) -> int:
        if self._t0 is None:
            self._t0 = at
        return round((at - self._t0) * 90000)

    def _start_encode(self, frame: Frame) -> None:
        assert self.encoder is not None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"encoder:{self.stream}")
        self._encoding = True
        keyframe, self._keyframe_wanted = self._keyframe_wanted, False
        level = self.level or self.quality.decide(Load(0.0, 1 / 30))
        self.level = level
        frame.mark("encode")
        job = asyncio.get_running_loop().run_in_executor(
            self._executor, self.encoder.encode, frame.image, self._pts(frame), level, keyframe
        )
        job.add_done_callback(lambda done: self._encoded(done, frame))

    def _encoded(self, done: asyncio.Future[list[av.Packet]], frame: Frame) -> None:
        self._encoding = False
        if done.cancelled() or done.exception() is not None:
            if not done.cancelled():
                log.warning("encode_failed", stream=self.stream, error=str(done.exception()))
            self._keyframe_wanted = True
        else:
            packets = done.result()
            self.frames_encoded += 1
            frame.mark("encoded")
            keyframe = any(p.is_keyframe for p in packets)
            self._deliver(packets, keyframe)
            self._adapt_quality()
        waiting, self._waiting = self._waiting, None
        if waiting is not None and self.viewers and self._executor is not None:
            self._start_encode(waiting)

    def _adapt_quality(self) -> None:
        assert self.encoder is not None and self.level is not None
        estimates = [v.bandwidth_bps for v in self.viewers.values() if v.bandwidth_bps]
        load = Load(self.encoder.last_encode_s, 1.0 / self.level.fps,
                    min(estimates) if estimates else None)  # fmt: skip
        new = self.quality.decide(load)
        if new != self.level:
            self.bus.emit(QualityChanged(self.stream, self.level.name, new.name, self.quality.name))
            log.info("quality_changed", stream=self.stream, old=self.level.name, new=new.name)
            self.level = new

    # -- passthrough -------------------------------------------------------------------

    def _pass_through(self, unit: EncodedUnit, received_at: float) -> None:
        if not unit.data:
            return
        data = unit.data
        if unit.keyframe and unit.extradata and not _has_nal(data, H264_SPS):
            data = unit.extradata + data
        packet = av.Packet(data)
        packet.pts, packet.time_base = self._ticks(received_at), TIME_BASE
        self._deliver([packet], unit.keyframe)

    def _deliver(self, packets: list[av.Packet], keyframe: bool) -> None:
        size = sum(p.size for p in packets)
        for viewer in list(self.viewers.values()):
            if viewer.track.push(packets, keyframe):
                self.frames_sent += 1
                self.bytes_sent += size
            elif viewer.track.needs_keyframe:
                self.request_keyframe()

    def _send_analysis(self, frame: Frame) -> None:
        result = frame.analysis
        message: dict[str, Any] = {"seq": frame.seq, "captured_ms": int(frame.captured_at * 1000)}
        if result is not None:
            message["analysis"] = result.to_dict()
            message["lag_frames"] = frame.seq - result.seq
        text = json.dumps(message)
        for viewer in self.viewers.values():
            channel = viewer.channel
            if channel is not None and channel.readyState == "open":
                with contextlib.suppress(Exception):
                    if channel.bufferedAmount < 1_000_000:
                        channel.send(text)

    def stats(self) -> dict[str, Any]:
        return {
            "codec": self.codec.name,
            "quality": self.quality.name,
            "level": self.level.name if self.level else None,
            "viewers": len(self.viewers),
            "frames_encoded": self.frames_encoded,
            "frames_sent": self.frames_sent,
            "encoder_skipped": self.frames_skipped,
            "viewer_drops": sum(v.track.dropped for v in self.viewers.values()),
            "bytes_sent": self.bytes_sent,
        }


def _has_nal(data: bytes, nal_type: int) -> bool:
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        if data[index + 3] & 0x1F == nal_type:
            return True
        index = data.find(b"\x00\x00\x01", index + 3)
    return False
