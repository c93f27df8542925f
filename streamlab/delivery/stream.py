"""Delivery of one stream to its viewers: a pipeline sink that the server can update live.

Each viewer gets a codec it offered (the stream's preference when it can) and a rung of the
source's ladder chosen by its own quality strategy from its own RTCP feedback. Viewers on
the same (codec, rung) share one encoder; an encoder starts with the first viewer that needs
it and stops when the last one leaves. Passthrough gives H.264 viewers on the top rung the
camera's access units, straight from the source thread; one joining between the camera's
keyframes starts at once (``passthrough_join``: the cached group of pictures replayed in one
burst, or a transcoded bridge until the camera's next keyframe). A viewer switches rung at a
keyframe of the new rung; keyframes are coalesced and rate-limited per encoder. Settings
changes (``quality``, ``codec``, ``network``, ``playout_delay``, ...) arrive as
``SettingsChanged`` events, whoever made them: ``pipeline.update``, ``Server.update``,
``PATCH /api/streams/{name}``, a panel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from typing import Any

import av
import structlog

from streamlab.clock import now
from streamlab.config import StreamingConfig
from streamlab.delivery.clock import MediaClock
from streamlab.delivery.encoders import EncoderKey, RungEncoder
from streamlab.delivery.estimate import BandwidthEstimator
from streamlab.delivery.gop import GopCache
from streamlab.delivery.keyframes import KeyframeLimiter
from streamlab.delivery.network import NetworkSpec, attach_link
from streamlab.delivery.playout import PlayoutDelay
from streamlab.delivery.playout import normalized as normalized_playout
from streamlab.delivery.rtcp import hook_sender, unhook_sender
from streamlab.delivery.viewer import Viewer
from streamlab.errors import ConfigError, NegotiationError
from streamlab.events import Event, EventBus, FrameDropped, QualityChanged, SettingsChanged
from streamlab.frame import EncodedUnit, Frame
from streamlab.sources.base import Source
from streamlab.strategies.codec import CodecStrategy, choose_codec, codecs
from streamlab.strategies.quality import Level, Load, ladder_for, quality
from streamlab.webrtc.encoder import TIME_BASE
from streamlab.webrtc.track import ViewerTrack

log = structlog.get_logger("streamlab.delivery")

H264_SPS = 7
PASSTHROUGH = EncoderKey("passthrough", "source")
REMEMBERED_FRAMES = 512
RESEND_FRAMES = 15
MAX_CHANNEL_BUFFER = 1_000_000
DRAIN_S = 0.3  # pause before a loss-driven step down (the link's queue drains)
START_FACTOR = 1.5  # a new viewer's estimate, times the top rung: it starts on the top rung
MAX_FACTOR = 4.0
VIEWER_SETTINGS = ("network", "quality", "playout_delay")


class StreamDelivery:
    """The sink between a pipeline and its viewers (``pipeline.add_sink(delivery)``)."""

    def __init__(
        self, stream: str, config: StreamingConfig, bus: EventBus, *, fps: float = 30.0
    ) -> None:
        self.stream = stream
        self.bus = bus
        self.preference: CodecStrategy = codecs.create(config.codec)
        self.quality_spec = config.quality
        self.network = NetworkSpec.parse(config.network)
        self.viewer_queue = config.viewer_queue
        self.encoder_threads = config.encoder_threads
        self.vp8_cpu_used = config.vp8_cpu_used
        self.keyframe_interval_s = config.keyframe_min_interval_ms / 1000
        self.fps = fps
        self.viewers: dict[str, Viewer] = {}
        self.encoders: dict[EncoderKey, RungEncoder] = {}
        self.passthrough = KeyframeLimiter(self.keyframe_interval_s)
        self.join = config.passthrough_join
        self.gop = GopCache()
        self.bridges = 0
        self.ladder: tuple[Level, ...] | None = None
        self._source_size: tuple[int, int] | None = None
        self.clock = MediaClock(config.rtp_clock)
        self.playout_spec = config.playout_delay
        self._last_result_seq = -1
        self._frame_ticks: OrderedDict[int, tuple[int, int | None]] = OrderedDict()
        self._unit_ticks: OrderedDict[int, int] = OrderedDict()
        self._passthrough_wanted = False
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
        if not self.preference.passthrough:
            return True
        return any(not v.codec.passthrough or (v.rung or 0) > 0 or (v.pending or 0) > 0
                   or v.bridging for v in self.viewers.values())  # fmt: skip

    @property
    def codec(self) -> CodecStrategy:
        """The stream's codec preference."""
        return self.preference

    # -- viewers --------------------------------------------------------------------------

    def add_viewer(self, viewer_id: str, offered: set[str] | None = None) -> Viewer:
        """A new viewer whose offer lists ``offered`` MIME types (NegotiationError if none fits)."""
        offered = offered if offered is not None else {"video/vp8", "video/h264"}
        codec = choose_codec(self.preference, offered)
        if codec is None:
            raise NegotiationError("the offer has no codec this stream can send (VP8 or H.264)")
        top = self.ladder[0].bitrate if self.ladder else 2_000_000
        viewer = Viewer(
            viewer_id,
            ViewerTrack(self.viewer_queue),
            codec,
            frozenset(offered),
            quality.create(self.quality_spec),
            BandwidthEstimator(int(top * START_FACTOR), max_bps=int(top * MAX_FACTOR)),
        )
        viewer.on_keyframe = self._viewer_wants_keyframe
        self.viewers[viewer_id] = viewer
        return viewer

    def attach_peer(self, viewer: Viewer, pc: Any) -> None:
        """Wire a viewer's peer connection (after its local description is set): RTCP
        feedback, the emulated link, and the RTP clock of its track."""
        sender = next(t.sender for t in pc.getTransceivers() if t.sender.track is viewer.track)
        viewer.track.sender = sender
        hook_sender(sender, viewer, viewer.guard)
        viewer.link = attach_link(pc, self._network_of(viewer))
        viewer.link.observer = viewer.on_wire

    def viewer_connected(self, viewer_id: str) -> None:
        """The viewer's transport is up: from now on it counts for frames and keyframes."""
        viewer = self.viewers.get(viewer_id)
        if viewer is None or viewer.connected:
            return
        viewer.connected = True
        viewer.connected_at = now()
        viewer.track.needs_keyframe = True
        if viewer.rung is not None:
            self._request_keyframe(self._key(viewer, viewer.rung))

    def remove_viewer(self, viewer_id: str) -> None:
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return
        viewer.track.stop()
        if viewer.link is not None:
            viewer.link.close()
        if viewer.track.sender is not None:  # our hooks would keep the peer in cycles
            unhook_sender(viewer.track.sender)
            viewer.track.sender = None
        viewer.on_keyframe = None
        self._sync_encoders()

    def update_viewer(self, viewer_id: str, **settings: str | None) -> dict[str, Any]:
        """Per-viewer settings: ``network``, ``quality`` and ``playout_delay`` (a spec, or
        None to follow the stream again). KeyError for an unknown viewer, ConfigError for a
        bad setting; nothing changes unless every setting is valid."""
        viewer = self.viewers[viewer_id]
        unknown = sorted(set(settings) - set(VIEWER_SETTINGS))
        if unknown:
            raise ConfigError(f"unknown viewer setting {unknown[0]!r}; use "
                              + ", ".join(VIEWER_SETTINGS))  # fmt: skip
        for name, value in settings.items():
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"viewer setting {name!r} must be a string or null")
        network = settings.get("network")
        spec = NetworkSpec.parse(network) if isinstance(network, str) else None
        wanted = settings.get("quality")
        strategy = quality.create(quality.validate(wanted)) if isinstance(wanted, str) else None
        playout = settings.get("playout_delay")
        playout = normalized_playout(playout) if isinstance(playout, str) else None
        if "network" in settings:
            viewer.network_override = spec
            if viewer.link is not None:
                viewer.link.update(self._network_of(viewer))
        if "quality" in settings:
            viewer.quality_override = wanted
            viewer.strategy = strategy or quality.create(self.quality_spec)
        if "playout_delay" in settings:
            viewer.playout_override = playout
            self._tell_playout(viewer)
        return self.viewer_info(viewer)

    def playout_of(self, viewer: Viewer) -> PlayoutDelay | None:
        """The playout-delay range ``viewer`` is to be told (None: no hint)."""
        return PlayoutDelay.parse(viewer.playout_override or self.playout_spec)

    def _tell_playout(self, viewer: Viewer) -> None:
        if viewer.playout is not None:
            viewer.playout.delay = self.playout_of(viewer)

    def viewer_info(self, viewer: Viewer) -> dict[str, Any]:
        return viewer.info(self.ladder, self.network)

    def _network_of(self, viewer: Viewer) -> NetworkSpec:
        return viewer.network_override if viewer.network_override is not None else self.network

    def _key(self, viewer: Viewer, rung: int) -> EncoderKey:
        assert self.ladder is not None
        name = self.ladder[rung].name
        if viewer.codec.passthrough:
            return PASSTHROUGH if rung == 0 and not viewer.bridging else EncoderKey("h264", name)
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
        if self._remove_listener is not None or not _gives_units(source):
            return
        loop = asyncio.get_running_loop()

        def on_unit(unit: EncodedUnit, received_at: float) -> None:
            if self._passthrough_wanted or self._caching:
                loop.call_soon_threadsafe(self._pass_through, unit, received_at)

        self._remove_listener = source.add_unit_listener(on_unit)

    def offer(self, frame: Frame) -> None:
        if not self.viewers:
            return
        self.frames_offered += 1
        ticks = self.clock.ticks(frame.captured_at, frame.pts, frame.time_base, "frames")
        unit_ticks = self._unit_ticks.get(frame.pts)
        self._remember(self._frame_ticks, frame.seq, (ticks, unit_ticks))
        self._send_analysis(frame, ticks, unit_ticks)
        connected = [v for v in self.viewers.values() if v.connected]
        if not connected:
            return
        size = (frame.width, frame.height)
        if self.ladder is None or size != self._source_size:
            self._set_ladder(size)
        at = now()
        for viewer in connected:
            self._decide(viewer, at)
        self._sync_encoders()
        for encoder in list(self.encoders.values()):
            encoder.offer(frame, ticks)

    def close(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self._unsubscribe()
        for viewer_id in list(self.viewers):
            self.remove_viewer(viewer_id)
        for encoder in self.encoders.values():
            self._retire(encoder)
        self.encoders.clear()

    def _retire(self, encoder: RungEncoder) -> None:
        self._retired["frames"] += encoder.encoder.frames
        self._retired["keyframes"] += encoder.encoder.keyframes
        encoder.close()

    # -- rungs ----------------------------------------------------------------------------

    def _set_ladder(self, size: tuple[int, int]) -> None:
        if self.ladder is not None:
            log.info("ladder_reset", stream=self.stream, old=self._source_size, new=size)
        self._source_size = size
        self.ladder = ladder_for(size[0], size[1], self.fps)
        for encoder in self.encoders.values():
            self._retire(encoder)
        self.encoders.clear()
        top = self.ladder[0].bitrate
        for viewer in self.viewers.values():
            viewer.rung = viewer.pending = None
            viewer.estimator.max_bps = int(top * MAX_FACTOR)
            if not viewer.estimator.reports:
                viewer.estimator.target_bps = top * START_FACTOR

    def _decide(self, viewer: Viewer, at: float) -> None:
        ladder = self.ladder
        assert ladder is not None
        current = viewer.pending if viewer.pending is not None else viewer.rung
        load = Load(at=at)
        if viewer.rung is not None:
            encoder = self.encoders.get(self._key(viewer, viewer.rung))
            rung = ladder[viewer.rung]
            estimator = viewer.estimator
            known = estimator.reports > 1 or estimator.remb_bps is not None
            load = Load(
                encode_s=encoder.encoder.last_encode_s if encoder is not None else 0.0,
                budget_s=1.0 / rung.fps,
                bandwidth_bps=estimator.estimate_bps if known else None,
                loss=estimator.loss,
                at=at,
                overused=estimator.overused(at),
            )
        chosen = max(0, min(len(ladder) - 1, viewer.strategy.decide(ladder, current, load)))
        if viewer.rung is None:
            viewer.rung = chosen
            viewer.track.needs_keyframe = True
            if self._key(viewer, chosen) == PASSTHROUGH:
                self._join_passthrough(viewer)
            else:
                self._request_keyframe(self._key(viewer, chosen))
            return
        if current is None or chosen == current:
            return
        viewer.pending = None if chosen == viewer.rung else chosen
        if viewer.pending is not None and chosen > current and viewer.estimator.loss_seen(at):
            # The link is full: send nothing for a moment so the new rung's keyframe goes
            # into an empty queue instead of being dropped behind the old rung's packets.
            viewer.hold_until = at + DRAIN_S
            asyncio.get_running_loop().call_later(DRAIN_S, self._viewer_wants_keyframe, viewer)
        elif viewer.pending is not None:
            self._request_keyframe(self._key(viewer, chosen))
        viewer.quality_changes += 1
        old, new = ladder[current].name, ladder[chosen].name
        self.bus.emit(QualityChanged(self.stream, old, new, viewer.strategy.name, viewer=viewer.id))
        estimator = viewer.estimator
        log.info("quality_changed", stream=self.stream, viewer=viewer.id, old=old, new=new,
                 estimate_bps=estimator.estimate_bps, loss=estimator.loss)  # fmt: skip

    def _join_passthrough(self, viewer: Viewer) -> None:
        """Start a passthrough viewer now rather than at the camera's next keyframe."""
        if self.join == "gop" and self.gop.ready:
            burst = self.gop.join_burst(viewer.last_ticks)
            if viewer.track.push(burst, True):
                viewer.last_ticks = int(burst[-1].pts or 0)
                viewer.sent_frame(sum(p.size for p in burst))
                log.info("passthrough_join", stream=self.stream, viewer=viewer.id, mode="gop",
                         units=len(burst))  # fmt: skip
                return
        if self.join == "bridge":
            viewer.bridging = True
            self.bridges += 1
            log.info("passthrough_join", stream=self.stream, viewer=viewer.id, mode="bridge")
        self._request_keyframe(self._key(viewer, viewer.rung or 0))

    @property
    def _caching(self) -> bool:
        return self.join == "gop" and self.preference.passthrough

    def _sync_encoders(self) -> None:
        """Start the encoders some connected viewer needs; stop the ones nobody needs."""
        needed: dict[EncoderKey, Level] = {}
        watching: dict[EncoderKey, int] = {}
        passthrough = False
        if self.ladder is not None:
            for viewer in self.viewers.values():
                if not viewer.connected:
                    continue
                passthrough = passthrough or viewer.bridging  # it waits for a camera keyframe
                for rung in (viewer.rung, viewer.pending):
                    if rung is None:
                        continue
                    key = self._key(viewer, rung)
                    watching[key] = watching.get(key, 0) + 1
                    if key == PASSTHROUGH:
                        passthrough = True
                    else:
                        needed[key] = self.ladder[rung]
        self._passthrough_wanted = passthrough
        for key in [k for k in self.encoders if k not in needed]:
            self._retire(self.encoders.pop(key))
            log.info("encoder_stopped", stream=self.stream, encoder=str(key))
        for key, level in needed.items():
            if key not in self.encoders:
                self.encoders[key] = RungEncoder(
                    key, level, self._route, stream=self.stream,
                    threads=self.encoder_threads, vp8_cpu_used=self.vp8_cpu_used,
                    keyframe_interval_s=self.keyframe_interval_s, source_fps=self.fps,
                )  # fmt: skip
                log.info("encoder_started", stream=self.stream, encoder=str(key))
        for key, encoder in self.encoders.items():
            encoder.limiter.viewers = watching.get(key, 1)

    # -- packets to viewers ---------------------------------------------------------------

    def _route(self, key: EncoderKey, packets: list[av.Packet], keyframe: bool) -> None:
        size = sum(p.size for p in packets)
        ticks = int(packets[0].pts or 0)
        for viewer in list(self.viewers.values()):
            if not viewer.connected or viewer.rung is None:
                continue
            if viewer.hold_until and now() < viewer.hold_until:
                continue
            out = packets
            switch = viewer.pending is not None and self._key(viewer, viewer.pending) == key
            if keyframe and key == PASSTHROUGH and viewer.bridging and viewer.rung == 0:
                viewer.bridging, switch = False, True  # the bridge ends at the camera's keyframe
            if keyframe and switch:
                if viewer.pending is not None:
                    viewer.rung, viewer.pending = viewer.pending, None  # switch at the keyframe
                if ticks <= viewer.last_ticks:
                    # The old rung already sent this frame: the same RTP timestamp twice
                    # would merge both pictures into one at the receiver.
                    out = _restamped(packets, viewer.last_ticks + 1)
            if self._key(viewer, viewer.rung) != key:
                continue
            if out is packets and ticks <= viewer.last_ticks:
                continue  # never a timestamp twice, never backwards
            if viewer.track.push(out, keyframe):
                viewer.last_ticks = int(out[0].pts or 0)
                viewer.sent_frame(size)
                self.frames_sent += 1
                self.bytes_sent += size
            elif viewer.track.needs_keyframe:
                self.bus.emit(FrameDropped(self.stream, -1, "viewer", "awaiting_keyframe"))
                encoder = self.encoders.get(key)
                if encoder is None or not encoder.limiter.pending:
                    self._request_keyframe(key)

    def _pass_through(self, unit: EncodedUnit, received_at: float) -> None:
        if not unit.data:
            return
        data = unit.data
        if unit.keyframe and unit.extradata and not _has_nal(data, H264_SPS):
            data = unit.extradata + data
        ticks = self.clock.ticks(received_at, unit.pts, None, "units")  # RTSP: 90 kHz
        if unit.pts is not None:
            self._remember(self._unit_ticks, unit.pts, ticks)
        packet = av.Packet(data)
        packet.pts, packet.time_base = ticks, TIME_BASE
        self.units_forwarded += 1
        if unit.keyframe:
            self.passthrough.sent(now())
        if self._caching:
            self.gop.add(packet, unit.keyframe)
        if self._passthrough_wanted:
            self._route(PASSTHROUGH, [packet], unit.keyframe)

    @staticmethod
    def _remember(table: OrderedDict[int, Any], key: int, value: Any) -> None:
        table[key] = value
        while len(table) > REMEMBERED_FRAMES:
            table.popitem(last=False)

    def _send_analysis(self, frame: Frame, ticks: int, unit_ticks: int | None) -> None:
        """One data-channel message per new analysis result (and a reminder every
        ``RESEND_FRAMES`` frames for the player's lag figures); none without analysis: each
        message costs SCTP work on the event loop for every viewer."""
        result = frame.analysis
        if result is None:
            return
        if result.seq == self._last_result_seq and frame.seq % RESEND_FRAMES:
            return
        self._last_result_seq = result.seq
        base: dict[str, Any] = {"type": "analysis", "seq": frame.seq,
                                "captured_ms": int(frame.captured_at * 1000)}  # fmt: skip
        analysis = result.to_dict()
        analysed = self._frame_ticks.get(result.seq)
        base["lag_frames"] = frame.seq - result.seq
        for viewer in self.viewers.values():
            channel = viewer.channel
            if channel is None or channel.readyState != "open":
                continue
            if channel.bufferedAmount >= MAX_CHANNEL_BUFFER:
                continue
            direct = self._key(viewer, viewer.rung or 0) == PASSTHROUGH if self.ladder else False
            message = dict(base)
            rtp = viewer.track.rtp_timestamp(unit_ticks if direct and unit_ticks else ticks)
            if rtp is not None:
                message["rtp_timestamp"] = rtp
            described = dict(analysis)
            if analysed is not None:
                own = analysed[1] if direct and analysed[1] is not None else analysed[0]
                described_rtp = viewer.track.rtp_timestamp(own)
                if described_rtp is not None:
                    described["rtp_timestamp"] = described_rtp
            message["analysis"] = described
            with contextlib.suppress(Exception):
                channel.send(json.dumps(message))

    def _tell(self, viewer: Viewer, message: dict[str, Any]) -> None:
        channel = viewer.channel
        if channel is not None and channel.readyState == "open":
            with contextlib.suppress(Exception):
                channel.send(json.dumps(message))

    # -- live settings --------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if not isinstance(event, SettingsChanged) or event.stream != self.stream:
            return
        changes = event.changes
        if "quality" in changes:
            self.quality_spec = str(changes["quality"])
            for viewer in self.viewers.values():
                if viewer.quality_override is None:
                    viewer.strategy = quality.create(self.quality_spec)
        if "network" in changes:
            self.network = NetworkSpec.parse(str(changes["network"]))
            for viewer in self.viewers.values():
                if viewer.network_override is None and viewer.link is not None:
                    viewer.link.update(self.network)
        if "rtp_clock" in changes:
            self.clock.mode = changes["rtp_clock"]  # each path re-anchors on its next frame
        if "playout_delay" in changes:
            self.playout_spec = str(changes["playout_delay"])
            for viewer in self.viewers.values():
                self._tell_playout(viewer)
        if "passthrough_join" in changes:
            self.join = changes["passthrough_join"]
            self.gop = GopCache()
        if "codec" in changes:
            self.preference = codecs.create(str(changes["codec"]))
            mime = self.preference.mime.lower()
            for viewer in self.viewers.values():
                if viewer.codec.name != self.preference.name and mime in viewer.offered:
                    reason = f"codec changed to {self.preference.name}"
                    self._tell(viewer, {"type": "reconnect", "reason": reason})

    def check_codec(self, spec: str, source: Source) -> None:
        """Raise ConfigError when ``spec`` cannot serve this stream's source."""
        if codecs.create(spec).passthrough and not _gives_units(source):
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
            "passthrough_units": self.units_forwarded,
            "passthrough_keyframe_requests": self.passthrough.requests,
            "passthrough_join": self.join,
            "rtp_clock": self.clock.mode,
            "playout_delay": self.playout_spec,
            "clock_anchors": self.clock.anchors,
            "gop_cache": self.gop.stats(),
            "bridges": self.bridges,
            "frames_sent": self.frames_sent,
            "encoder_skipped": sum(e.busy_drops for e in self.encoders.values()),
            "viewer_drops": sum(v.track.dropped for v in self.viewers.values()),
            "bytes_sent": self.bytes_sent,
        }


def _restamped(packets: list[av.Packet], ticks: int) -> list[av.Packet]:
    copies = []
    for packet in packets:
        copy = av.Packet(bytes(packet))
        copy.pts, copy.time_base = ticks, TIME_BASE
        copies.append(copy)
    return copies


def _rung_info(rung: Level) -> dict[str, Any]:
    return {"name": rung.name, "width": rung.width, "height": rung.height, "fps": rung.fps,
            "bitrate": rung.bitrate}  # fmt: skip


def _gives_units(source: Source) -> bool:
    """Whether ``source`` hands out the camera's encoded access units (RTSP)."""
    from streamlab.sources.rtsp import RtspSource

    return isinstance(source, RtspSource)


def _has_nal(data: bytes, nal_type: int) -> bool:
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        if data[index + 3] & 0x1F == nal_type:
            return True
        index = data.find(b"\x00\x00\x01", index + 3)
    return False
