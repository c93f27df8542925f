"""Encoders and packets: start the encoders connected viewers need, stop the rest, and
route each encoder's packets to the viewers on its (codec, rung)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import av
import structlog

from streamlab.clock import now
from streamlab.delivery.encoders import EncoderKey, RungEncoder
from streamlab.delivery.passthrough import PASSTHROUGH
from streamlab.events import FrameDropped
from streamlab.strategies.quality import Level
from streamlab.webrtc.encoder import TIME_BASE

if TYPE_CHECKING:
    from streamlab.delivery.stream import StreamDelivery

log = structlog.get_logger("streamlab.delivery")


def sync_encoders(delivery: StreamDelivery) -> None:
    """Start the encoders some connected viewer needs; stop the ones nobody needs."""
    needed: dict[EncoderKey, Level] = {}
    watching: dict[EncoderKey, int] = {}
    wanted = False
    if delivery.ladder is not None:
        for viewer in delivery.viewers.values():
            if not viewer.connected:
                continue
            wanted = wanted or viewer.bridging  # it waits for a camera keyframe
            for rung in (viewer.rung, viewer.pending):
                if rung is None:
                    continue
                key = delivery._key(viewer, rung)
                watching[key] = watching.get(key, 0) + 1
                if key == PASSTHROUGH:
                    wanted = True
                else:
                    needed[key] = delivery.ladder[rung]
    for forward in delivery.forwards:  # streamlab.forward: a consumer like a viewer
        key, level = forward.key, forward.level
        if key is not None and level is not None:
            watching[key] = watching.get(key, 0) + 1
            wanted = wanted or key == PASSTHROUGH
            if key != PASSTHROUGH:
                needed[key] = level
    delivery._passthrough_wanted = wanted
    for key in [k for k in delivery.encoders if k not in needed]:
        delivery._retire(delivery.encoders.pop(key))
        log.info("encoder_stopped", stream=delivery.stream, encoder=str(key))
    for key, level in needed.items():
        if key not in delivery.encoders:
            delivery.encoders[key] = RungEncoder(
                key, level, delivery._route, stream=delivery.stream,
                threads=delivery.encoder_threads, vp8_cpu_used=delivery.vp8_cpu_used,
                keyframe_interval_s=delivery.keyframe_interval_s, source_fps=delivery.fps,
            )  # fmt: skip
            log.info("encoder_started", stream=delivery.stream, encoder=str(key))
    for key, encoder in delivery.encoders.items():
        encoder.limiter.viewers = watching.get(key, 1)


def route(delivery: StreamDelivery, key: EncoderKey, packets: list[av.Packet],
          keyframe: bool) -> None:  # fmt: skip
    """One encoded frame of encoder ``key`` to every viewer on it (or switching to it)."""
    size = sum(p.size for p in packets)
    ticks = int(packets[0].pts or 0)
    for forward in delivery.forwards:
        forward.push(key, packets, keyframe)
    for viewer in list(delivery.viewers.values()):
        if not viewer.connected or viewer.rung is None:
            continue
        if viewer.hold_until and now() < viewer.hold_until:
            continue
        out = packets
        switch = viewer.pending is not None and delivery._key(viewer, viewer.pending) == key
        if keyframe and key == PASSTHROUGH and viewer.bridging and viewer.rung == 0:
            viewer.bridging, switch = False, True  # the bridge ends at the camera's keyframe
        if keyframe and switch:
            if viewer.pending is not None:
                viewer.rung, viewer.pending = viewer.pending, None  # switch at the keyframe
            if ticks <= viewer.last_ticks:
                # The old rung already sent this frame: the same RTP timestamp twice
                # would merge both pictures into one at the receiver.
                out = restamped(packets, viewer.last_ticks + 1)
        if delivery._key(viewer, viewer.rung) != key:
            continue
        if out is packets and ticks <= viewer.last_ticks:
            continue  # never a timestamp twice, never backwards
        if viewer.track.push(out, keyframe):
            viewer.last_ticks = int(out[0].pts or 0)
            viewer.sent_frame(size)
            delivery.frames_sent += 1
            delivery.bytes_sent += size
        elif viewer.track.needs_keyframe:
            delivery.bus.emit(FrameDropped(delivery.stream, -1, "viewer", "awaiting_keyframe"))
            encoder = delivery.encoders.get(key)
            if encoder is None or not encoder.limiter.pending:
                delivery._request_keyframe(key)


def restamped(packets: list[av.Packet], ticks: int) -> list[av.Packet]:
    """Copies of ``packets`` carrying the RTP ticks ``ticks``."""
    copies = []
    for packet in packets:
        copy = av.Packet(bytes(packet))
        copy.pts, copy.time_base = ticks, TIME_BASE
        copies.append(copy)
    return copies
