"""Pre-encoded packets of one codec from one aiortc peer to another on 127.0.0.1.

The sender's track yields ``av.Packet``s with pts in a 90 kHz time base, as the delivery's
``ViewerTrack`` does, so aiortc only packetises them with the codec's ``pack``; the receiver
depacketises and decodes them with the codec's decoder. For tests and experiments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from streamlab.webrtc.codecs.register import register
from streamlab.webrtc.ice import local_addresses


class PacketTrack(MediaStreamTrack):
    """Yields ``packets`` in order, one every ``1 / fps`` seconds, then ends."""

    kind = "video"

    def __init__(self, packets: Sequence[av.Packet], fps: float = 30.0) -> None:
        super().__init__()
        self.packets = list(packets)
        self.interval = 1.0 / fps
        self.sent = 0
        self._due: float | None = None

    async def recv(self) -> av.Packet:
        """The next packet, paced at the frame rate."""
        if self.sent >= len(self.packets):
            self.stop()
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        self._due = loop.time() if self._due is None else self._due + self.interval
        await asyncio.sleep(max(0.0, self._due - loop.time()))
        packet = self.packets[self.sent]
        self.sent += 1
        return packet


def send_from(
    pc: RTCPeerConnection, mime: str, packets: Sequence[av.Packet], fps: float = 30.0
) -> PacketTrack:
    """Add a send-only video transceiver to ``pc`` that offers or answers only ``mime`` and
    sends ``packets`` once the connection is up; returns its track."""
    register()
    track = PacketTrack(packets, fps)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in capabilities if c.mimeType.lower() == mime.lower()])
    return track


@dataclass
class Delivered:
    """What the receiving peer got: the negotiated codec and the decoded frames."""

    mime: str | None = None
    sizes: list[tuple[int, int]] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)


async def send_packets(
    mime: str, packets: Sequence[av.Packet], *, fps: float = 30.0, keep_images: bool = False
) -> Delivered:
    """Send ``packets`` as ``mime`` (e.g. ``video/VP9``) over a real peer connection and
    return what the other peer decoded; ends a second after the last packet is sent."""
    register()
    delivered = Delivered()
    readers: list[asyncio.Future[None]] = []
    with local_addresses(("127.0.0.1",)):
        sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    try:
        track = send_from(sender, mime, packets, fps)
        transceiver = sender.getTransceivers()[0]

        @receiver.on("track")
        def on_track(remote: MediaStreamTrack) -> None:
            async def read() -> None:
                while True:
                    try:
                        frame: Any = await remote.recv()
                    except MediaStreamError:
                        break
                    delivered.sizes.append((frame.width, frame.height))
                    if keep_images:
                        delivered.images.append(frame.to_ndarray(format="yuv420p"))

            readers.append(asyncio.ensure_future(read()))

        with local_addresses(("127.0.0.1",)):
            await sender.setLocalDescription(await sender.createOffer())
            await receiver.setRemoteDescription(sender.localDescription)
            await receiver.setLocalDescription(await receiver.createAnswer())
            await sender.setRemoteDescription(receiver.localDescription)
        delivered.mime = transceiver._codecs[0].mimeType if transceiver._codecs else None
        deadline = len(packets) / fps + 20.0
        while track.sent < len(packets) and deadline > 0:
            await asyncio.sleep(0.1)
            deadline -= 0.1
        await asyncio.sleep(1.0)
    finally:
        with contextlib.suppress(Exception):
            await sender.close()
        with contextlib.suppress(Exception):
            await receiver.close()
        for reader in readers:
            reader.cancel()
    return delivered
