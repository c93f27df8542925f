"""Passthrough: the camera's own H.264 access units to viewers on the top rung, no re-encode.

Units come straight from the source thread (before decode). A viewer joining between the
camera's keyframes starts at once (``passthrough_join``): ``gop`` replays the cached group
of pictures in one burst, ``bridge`` sends a transcode until the camera's next keyframe,
``wait`` waits for it. An H.265 camera's units go only to viewers that offered H.265
(RFC 7798; they wait for the camera's keyframe: there is no H.265 encoder to bridge with);
every other viewer gets a transcode, with the reason in the stream's stats and one log line.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import av
import structlog

from streamlab.clock import now
from streamlab.delivery.encoders import EncoderKey
from streamlab.frame import EncodedUnit
from streamlab.sources.base import Source
from streamlab.strategies.codec import CodecStrategy
from streamlab.webrtc.encoder import TIME_BASE

if TYPE_CHECKING:
    from streamlab.delivery.stream import StreamDelivery
    from streamlab.delivery.viewer import Viewer

log = structlog.get_logger("streamlab.delivery")

H264_SPS = 7
PASSTHROUGH = EncoderKey("passthrough", "source")
PASSABLE = frozenset({"h264"})  # camera codecs passthrough viewers can be sent as they are
HEVC_VPS = 32
H265_PASSTHROUGH = CodecStrategy("passthrough", "video/H265", None)  # an H.265 camera's units
CODEC_NAMES = {"hevc": "H.265", "h264": "H.264", "mpeg4": "MPEG-4 Part 2", "mjpeg": "MJPEG"}


def attach_units(delivery: StreamDelivery, source: Source) -> None:
    """Take the camera's access units from the source thread, for passthrough viewers;
    sources without access units are left alone."""
    if delivery._remove_listener is not None or not gives_units(source):
        return
    loop = asyncio.get_running_loop()

    def on_unit(unit: EncodedUnit, received_at: float) -> None:
        if unit.codec != delivery.camera_codec:
            loop.call_soon_threadsafe(camera_codec_seen, delivery, unit.codec)
        if delivery._passthrough_wanted or caching(delivery):
            loop.call_soon_threadsafe(pass_through, delivery, unit, received_at)

    delivery._remove_listener = source.add_unit_listener(on_unit)


def codec_for(delivery: StreamDelivery, offered: set[str]) -> CodecStrategy | None:
    """The camera's own H.265 for a viewer that offered it, when the stream prefers
    passthrough and the camera is known to send H.265; None: the usual choice."""
    if (delivery.preference.passthrough and delivery.camera_codec == "hevc"
            and "video/h265" in offered):  # fmt: skip
        return H265_PASSTHROUGH
    return None


def key_of(delivery: StreamDelivery, viewer: Viewer, rung_name: str, rung: int) -> EncoderKey:
    """A passthrough viewer's encoder: the camera's units on the top rung when they fit
    its codec (an H.265 viewer always: nothing else can be sent to it), else H.264."""
    if viewer.codec.mime.lower() == "video/h265":
        return PASSTHROUGH
    direct = rung == 0 and not viewer.bridging and camera_fits(delivery)
    return PASSTHROUGH if direct else EncoderKey("h264", rung_name)


def camera_fits(delivery: StreamDelivery) -> bool:
    """Whether passthrough viewers can get the camera's own units: an H.264 camera (or one
    whose first unit has not arrived yet)."""
    return delivery.camera_codec is None or delivery.camera_codec in PASSABLE


def transcode_reason(delivery: StreamDelivery) -> str | None:
    """Why the camera's units cannot be passed through (None: they can)."""
    if camera_fits(delivery):
        return None
    codec = delivery.camera_codec or ""
    why = ("browsers decode over WebRTC only with a hardware decoder" if codec == "hevc"
           else "passthrough cannot send")  # fmt: skip
    return (
        f"the camera sends {CODEC_NAMES.get(codec, codec)} ({codec}), which {why}: "
        "viewers get a transcode encoded once (H.264 for passthrough viewers), except "
        "passthrough viewers that offered H.265"
    )


def camera_codec_seen(delivery: StreamDelivery, codec: str | None) -> None:
    """The camera's codec, from its access units (on the event loop); says once why a
    camera that cannot be passed through is transcoded."""
    if codec == delivery.camera_codec:
        return
    delivery.camera_codec = codec
    reason = transcode_reason(delivery)
    if reason is not None:
        log.warning("camera_transcoded", stream=delivery.stream, camera_codec=codec,
                    reason=reason)  # fmt: skip


def caching(delivery: StreamDelivery) -> bool:
    """Whether the group of pictures since the camera's last keyframe is kept for joins."""
    return delivery.join == "gop" and delivery.preference.passthrough


def join(delivery: StreamDelivery, viewer: Viewer) -> None:
    """Start a passthrough viewer now rather than at the camera's next keyframe."""
    if viewer.codec.mime.lower() == "video/h265":  # no H.265 encoder, no H.265 GOP cache
        delivery._request_keyframe(PASSTHROUGH)
        return
    if delivery.join == "gop" and delivery.gop.ready:
        burst = delivery.gop.join_burst(viewer.last_ticks)
        if viewer.track.push(burst, True):
            viewer.last_ticks = int(burst[-1].pts or 0)
            viewer.sent_frame(sum(p.size for p in burst))
            log.info("passthrough_join", stream=delivery.stream, viewer=viewer.id, mode="gop",
                     units=len(burst))  # fmt: skip
            return
    if delivery.join == "bridge":
        viewer.bridging = True
        delivery.bridges += 1
        log.info("passthrough_join", stream=delivery.stream, viewer=viewer.id, mode="bridge")
    delivery._request_keyframe(delivery._key(viewer, viewer.rung or 0))


def pass_through(delivery: StreamDelivery, unit: EncodedUnit, received_at: float) -> None:
    """One camera access unit, on the event loop: to the GOP cache and passthrough viewers."""
    h264 = unit.codec in PASSABLE
    if not unit.data or not (h264 or (unit.codec == "hevc" and h265_watching(delivery))):
        return
    data = unit.data
    if unit.keyframe and unit.extradata and not (
        has_nal(data, H264_SPS) if h264 else has_hevc_nal(data, HEVC_VPS)
    ):
        data = unit.extradata + data
    ticks = delivery.clock.ticks(received_at, unit.pts, None, "units")  # RTSP: 90 kHz
    if unit.pts is not None:
        delivery.messages.remember_unit(unit.pts, ticks)
    packet = av.Packet(data)
    packet.pts, packet.time_base = ticks, TIME_BASE
    delivery.units_forwarded += 1
    if unit.keyframe:
        delivery.passthrough.sent(now())
    if caching(delivery) and h264:
        delivery.gop.add(packet, unit.keyframe)
    if delivery._passthrough_wanted:
        delivery._route(PASSTHROUGH, [packet], unit.keyframe)


def gives_units(source: Source) -> bool:
    """Whether ``source`` hands out the camera's encoded access units (RTSP)."""
    from streamlab.sources.rtsp import RtspSource

    return isinstance(source, RtspSource)


def h265_watching(delivery: StreamDelivery) -> bool:
    """Whether some viewer takes the camera's H.265 units."""
    return any(v.codec.mime.lower() == "video/h265" for v in delivery.viewers.values())


def has_hevc_nal(data: bytes, nal_type: int) -> bool:
    """Whether an Annex-B H.265 access unit holds a NAL unit of ``nal_type``."""
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        if (data[index + 3] >> 1) & 0x3F == nal_type:
            return True
        index = data.find(b"\x00\x00\x01", index + 3)
    return False


def has_nal(data: bytes, nal_type: int) -> bool:
    """Whether an Annex-B access unit holds a NAL unit of ``nal_type``."""
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        if data[index + 3] & 0x1F == nal_type:
            return True
        index = data.find(b"\x00\x00\x01", index + 3)
    return False
