"""A viewer's audio track: encoded audio packets (``av.Packet``), so aiortc only packetizes.

The queue is bounded: when a viewer falls behind, its oldest packet is dropped (counted)
— an audio decoder resumes on any packet, so nothing waits for a keyframe.
"""

from __future__ import annotations

import asyncio
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from streamlab.webrtc.track import end_queue


class AudioPacketTrack(MediaStreamTrack):
    """Yields the stream's encoded audio (``mime``: ``audio/PCMA``, ``audio/PCMU`` or
    ``audio/opus``) from a queue of at most ``maxsize`` packets."""

    kind = "audio"

    def __init__(self, mime: str, maxsize: int = 25, *, passthrough: bool = False) -> None:
        super().__init__()
        self.mime = mime
        self.passthrough = passthrough  # the camera's own packets (else transcoded)
        self.queue: asyncio.Queue[av.Packet | None] = asyncio.Queue(maxsize=maxsize)
        self.delivered = 0
        self.dropped = 0
        self.last_sent: tuple[int, Any] | None = None  # (pts, time base) handed to aiortc

    def push(self, packet: av.Packet) -> None:
        """Queue one packet (from the event loop); the oldest goes when the queue is full."""
        if self.readyState != "live":
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(packet)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self.queue.get()
        if packet is None:
            raise MediaStreamError
        self.delivered += 1
        if packet.pts is not None:
            self.last_sent = (int(packet.pts), packet.time_base)
        return packet

    def stop(self) -> None:
        super().stop()
        end_queue(self.queue)


def add_audio(pc: Any, track: AudioPacketTrack | None) -> None:
    """Give the peer connection a send-only audio transceiver for ``track`` (its codec
    only); None: no audio for this viewer."""
    if track is None:
        return
    transceiver = pc.addTransceiver(track, direction="sendonly")
    codecs = RTCRtpSender.getCapabilities("audio").codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() == track.mime.lower()])
