"""Delivery of one stream to its viewers: a pipeline sink that the server can update live.

Each viewer gets a codec it offered (the stream's preference when it can) and a rung of the
source's ladder chosen by its own quality strategy from its own RTCP feedback
(``rungs.py``). Viewers on the same (codec, rung) share one encoder; an encoder starts with
the first viewer that needs it and stops when the last one leaves (``routing.py``).
Passthrough gives H.264 viewers on the top rung the camera's access units
(``passthrough.py``). Analysis results go to each viewer's data channel
(``messages.py``). Settings changes arrive as ``SettingsChanged`` events, whoever made
them (``settings.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import av

from streamlab.clock import now
from streamlab.config import StreamingConfig
from streamlab.delivery import passthrough, routing, rungs, settings
from streamlab.delivery.audio import StreamAudio
from streamlab.delivery.clock import MediaClock
from streamlab.delivery.encoders import EncoderKey, RungEncoder
from streamlab.delivery.estimate import BandwidthEstimator
from streamlab.delivery.gop import GopCache
from streamlab.delivery.keyframes import KeyframeLimiter
from streamlab.delivery.messages import AnalysisMessages
from streamlab.delivery.network import NetworkSpec, attach_link
from streamlab.delivery.passthrough import PASSTHROUGH
from streamlab.delivery.playout import PlayoutDelay
from streamlab.delivery.probe import Prober
from streamlab.delivery.probing import run_probes
from streamlab.delivery.rtcp import hook_sender, unhook_sender
from streamlab.delivery.transport_feedback import TransportFeedback
from streamlab.delivery.viewer import Viewer
from streamlab.errors import ConfigError, NegotiationError
from streamlab.events import Event, EventBus, SettingsChanged
from streamlab.frame import Frame
from streamlab.sources.base import Source
from streamlab.strategies.codec import CodecStrategy, choose_codec, codecs
from streamlab.strategies.quality import Level, quality
from streamlab.webrtc import sender_reports, twcc
from streamlab.webrtc.padding import can_pad
from streamlab.webrtc.track import ViewerTrack

VIEWER_SETTINGS = settings.VIEWER_SETTINGS


class StreamDelivery:
    """The sink between a pipeline and its viewers (``pipeline.add_sink(delivery)``)."""

    def __init__(
        self, stream: str, config: StreamingConfig, bus: EventBus, *, fps: float = 30.0
    ) -> None:
        self.stream = stream
        self.bus = bus
        self.preference: CodecStrategy = codecs.create(config.codec)
        self.quality_spec = config.quality
        self.start_bps = config.start_bitrate
        self.network = NetworkSpec.parse(config.network)
        self.viewer_queue = config.viewer_queue
        self.encoder_threads = config.encoder_threads
        self.vp8_cpu_used = config.vp8_cpu_used
        self.keyframe_interval_s = config.keyframe_min_interval_ms / 1000
        self.fps = fps
        self.viewers: dict[str, Viewer] = {}
        self.forwards: list[Any] = []  # streamlab.forward: encoder consumers beside viewers
        self.encoders: dict[EncoderKey, RungEncoder] = {}
        self.passthrough = KeyframeLimiter(self.keyframe_interval_s)
        self.join = config.passthrough_join
        self.gop = GopCache()
        self.bridges = 0
        self.ladder: tuple[Level, ...] | None = None
        self._source_size: tuple[int, int] | None = None
        self.clock = MediaClock(config.rtp_clock)
        self.audio = StreamAudio(config.audio, self.clock, stream)  # one clock for both tracks
        self.sender_reports = config.sender_reports
        self.lip_sync = config.lip_sync
        self.playout_spec = config.playout_delay
        self.overlay = config.overlay
        self.messages = AnalysisMessages()
        self._passthrough_wanted = False
        self.camera_codec: str | None = None  # from the camera's access units (RTSP)
        self._remove_listener: Any = None
        self._unsubscribe = bus.subscribe(self._on_event)
        self.frames_offered = 0
        self.frames_sent = 0
        self.bytes_sent = 0
        self.units_forwarded = 0
        self._retired = {"frames": 0, "keyframes": 0}

    @property
    def needs_pixels(self) -> bool:
        """Whether some viewer needs decoded frames (a transcode). With passthrough
        preferred and only passthrough viewers, the camera need not be decoded for them."""
        if not self.preference.passthrough or not passthrough.camera_fits(self):
            return True
        return any(not v.codec.passthrough or (v.rung or 0) > 0 or (v.pending or 0) > 0
                   or v.bridging for v in self.viewers.values()) or any(
                   f.needs_pixels for f in self.forwards)  # fmt: skip

    @property
    def codec(self) -> CodecStrategy:
        """The stream's codec preference."""
        return self.preference

    # -- viewers --------------------------------------------------------------------------

    def add_viewer(self, viewer_id: str, offered: set[str] | None = None) -> Viewer:
        """A new viewer whose offer lists ``offered`` MIME types (NegotiationError if none fits)."""
        offered = offered if offered is not None else {"video/vp8", "video/h264"}
        codec = passthrough.codec_for(self, offered) or choose_codec(self.preference, offered)
        if codec is None:
            raise NegotiationError(
                "the offer has no codec this stream can send (VP8, H.264, VP9 or AV1)"
            )
        top = self.ladder[0].bitrate if self.ladder else 2_000_000
        viewer = Viewer(
            viewer_id,
            ViewerTrack(self.viewer_queue),
            codec,
            frozenset(offered),
            quality.create(self.quality_spec),
            BandwidthEstimator(self.start_bps, max_bps=int(top * rungs.MAX_FACTOR)),
        )
        viewer.on_keyframe = self._viewer_wants_keyframe
        self.viewers[viewer_id] = viewer
        return viewer

    def attach_peer(self, viewer: Viewer, pc: Any) -> None:
        """Wire a viewer's peer connection (after its local description is set): RTCP
        feedback, the emulated link, and the RTP clock of its track."""
        sender = next(t.sender for t in pc.getTransceivers() if t.sender.track is viewer.track)
        viewer.track.sender = sender
        viewer.media_ssrc = sender._ssrc
        hook_sender(sender, viewer, viewer.guard)
        if self.sender_reports == "capture":
            audio = self.audio.tracks.get(viewer.id)
            for t in pc.getTransceivers():
                if t.sender.track is viewer.track or (audio and t.sender.track is audio):
                    sender_reports.capture_clock(t.sender, lambda: self.clock.origin)
        if viewer.transport_cc is not None:
            twcc.stamp(sender)
            twcc.hook_feedback(sender.transport, viewer.on_transport_feedback)
            viewer.feedback = TransportFeedback()
        viewer.link = attach_link(pc, settings.network_of(self, viewer))
        viewer.link.observer = viewer.on_wire

    def viewer_connected(self, viewer_id: str) -> None:
        """The viewer's transport is up: from now on it counts for frames and keyframes."""
        viewer = self.viewers.get(viewer_id)
        if viewer is None or viewer.connected:
            return
        viewer.connected = True
        viewer.connected_at = now()
        viewer.track.needs_keyframe = True
        sender = viewer.track.sender
        if sender is not None and can_pad(sender):  # RTX is known once the transport is up
            top = self.ladder[0].bitrate if self.ladder else 2_000_000
            viewer.prober = Prober(self.start_bps, max_bps=top * rungs.MAX_FACTOR)
            viewer.prober.measured = viewer.feedback is not None
            viewer.probe_task = asyncio.get_running_loop().create_task(
                run_probes(self, viewer), name=f"probe:{viewer.id}"
            )
        if viewer.rung is not None:
            self._request_keyframe(self._key(viewer, viewer.rung))

    def remove_viewer(self, viewer_id: str) -> None:
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return
        viewer.track.stop()
        if viewer.probe_task is not None:
            viewer.probe_task.cancel()
            viewer.probe_task = None
        if viewer.link is not None:
            viewer.link.close()
        if viewer.track.sender is not None:  # our hooks would keep the peer in cycles
            unhook_sender(viewer.track.sender)
            sender_reports.release(viewer.track.sender)
            if viewer.transport_cc is not None and viewer.track.sender.transport is not None:
                twcc.unhook(viewer.track.sender.transport)
            viewer.track.sender = None
        viewer.on_keyframe = None
        self.audio.remove_viewer(viewer_id)
        routing.sync_encoders(self)

    def update_viewer(self, viewer_id: str, **changes: str | None) -> dict[str, Any]:
        """Per-viewer settings: ``network``, ``quality`` and ``playout_delay`` (a spec, or
        None to follow the stream again). KeyError for an unknown viewer, ConfigError for a
        bad setting; nothing changes unless every setting is valid."""
        viewer = self.viewers[viewer_id]
        settings.update_viewer(self, viewer, **changes)
        return self.viewer_info(viewer)

    def playout_of(self, viewer: Viewer) -> PlayoutDelay | None:
        """The playout-delay range ``viewer`` is to be told (None: no hint)."""
        return settings.playout_of(self, viewer)

    def viewer_info(self, viewer: Viewer) -> dict[str, Any]:
        return viewer.info(self.ladder, self.network)

    def _key(self, viewer: Viewer, rung: int) -> EncoderKey:
        assert self.ladder is not None
        name = self.ladder[rung].name
        if viewer.codec.passthrough:
            return passthrough.key_of(self, viewer, name, rung)
        return EncoderKey(viewer.codec.name, name)

    def _viewer_wants_keyframe(self, viewer: Viewer) -> None:
        rung = viewer.pending if viewer.pending is not None else viewer.rung
        if rung is not None and self.ladder is not None:
            self._request_keyframe(self._key(viewer, rung))

    def _request_keyframe(self, key: EncoderKey) -> None:
        encoder = self.encoders.get(key)
        if encoder is not None:
            encoder.limiter.request()
        elif key == PASSTHROUGH:
            self.passthrough.request()  # counted; the camera sends its own keyframes

    # -- the sink -------------------------------------------------------------------------

    def attach_units(self, source: Source) -> None:
        """Take the camera's access units straight from the source thread (before decode),
        for passthrough viewers; sources without access units are left alone."""
        passthrough.attach_units(self, source)
        self.audio.attach(source)

    def offer(self, frame: Frame) -> None:
        if not self.viewers and not self.forwards:
            return
        self.frames_offered += 1
        ticks = self.clock.ticks(frame.captured_at, frame.pts, frame.time_base, "frames")
        unit_ticks = self.messages.frame_sent(frame, ticks)
        self.messages.send(frame, ticks, unit_ticks, self.viewers.values(),
                           direct=self._direct, burned=self.overlay)  # fmt: skip
        for forward in self.forwards:
            forward.on_frame(frame, ticks)
        connected = [v for v in self.viewers.values() if v.connected]
        if not connected and not self.forwards:
            return
        size = (frame.width, frame.height)
        if self.ladder is None or size != self._source_size:
            rungs.set_ladder(self, size)
        at = now()
        for viewer in connected:
            rungs.decide(self, viewer, at)
        routing.sync_encoders(self)
        for encoder in list(self.encoders.values()):
            encoder.offer(frame, ticks)

    def _direct(self, viewer: Viewer) -> bool:
        """Whether ``viewer`` gets the camera's own access units."""
        return self.ladder is not None and self._key(viewer, viewer.rung or 0) == PASSTHROUGH

    def _route(self, key: EncoderKey, packets: list[av.Packet], keyframe: bool) -> None:
        routing.route(self, key, packets, keyframe)

    def close(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self._unsubscribe()
        for viewer_id in list(self.viewers):
            self.remove_viewer(viewer_id)
        self.audio.close()
        for encoder in self.encoders.values():
            self._retire(encoder)
        self.encoders.clear()

    def _retire(self, encoder: RungEncoder) -> None:
        self._retired["frames"] += encoder.encoder.frames
        self._retired["keyframes"] += encoder.encoder.keyframes
        encoder.close()

    # -- live settings --------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, SettingsChanged) and event.stream == self.stream:
            settings.on_settings(self, event)

    def check_codec(self, spec: str, source: Source) -> None:
        """Raise ConfigError when ``spec`` cannot serve this stream's source."""
        if codecs.create(spec).passthrough and not passthrough.gives_units(source):
            raise ConfigError("codec passthrough needs an H.264 RTSP camera source (rtsp://...)")

    # -- stats ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        encoders = [e.stats() for e in self.encoders.values()]
        return {
            "codec": self.preference.name,
            "quality": self.quality_spec,
            "network": str(self.network),
            "viewers": len(self.viewers),
            "ladder": [_rung_info(r) for r in (self.ladder or ())],
            "encoders": encoders,
            "frames_encoded": self._retired["frames"]
            + sum(e.encoder.frames for e in self.encoders.values()),
            "keyframes": self._retired["keyframes"]
            + sum(e.encoder.keyframes for e in self.encoders.values()),
            "camera_codec": self.camera_codec,
            "transcode_reason": passthrough.transcode_reason(self),
            "passthrough_units": self.units_forwarded,
            "passthrough_keyframe_requests": self.passthrough.requests,
            "passthrough_join": self.join,
            "rtp_clock": self.clock.mode,
            "playout_delay": self.playout_spec,
            "overlay": self.overlay,
            "clock_anchors": self.clock.anchors,
            "gop_cache": self.gop.stats(),
            "bridges": self.bridges,
            "frames_sent": self.frames_sent,
            "encoder_skipped": sum(e.busy_drops for e in self.encoders.values()),
            "viewer_drops": sum(v.track.dropped for v in self.viewers.values()),
            "bytes_sent": self.bytes_sent,
            "audio": self.audio.stats(),
        }


def _rung_info(rung: Level) -> dict[str, Any]:
    return {"name": rung.name, "width": rung.width, "height": rung.height, "fps": rung.fps,
            "bitrate": rung.bitrate}  # fmt: skip
