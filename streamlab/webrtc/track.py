"""A viewer's video track: pre-encoded packets from the delivery, through a bounded queue."""

from __future__ import annotations

import asyncio
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

RTP_MASK = 0xFFFFFFFF


class ViewerTrack(MediaStreamTrack):
    """Yields ``av.Packet``s so aiortc only packetizes (no per-viewer encoder).

    The queue holds at most ``maxsize`` encoded frames. When a slow viewer's queue is
    full, its queued frames are dropped and it waits for the next keyframe (a decoder
    cannot skip a frame of a running stream), so it never slows the other viewers.
    ``rtp_origin`` is learnt from the sender: the RTP timestamp of a packet with pts ``p``
    (90 kHz) is ``(rtp_origin + p) mod 2**32`` on this viewer's wire.
    """

    kind = "video"

    def __init__(self, maxsize: int = 4) -> None:
        super().__init__()
        self.queue: asyncio.Queue[list[av.Packet] | None] = asyncio.Queue(maxsize=maxsize)
        self.needs_keyframe = True
        self.delivered = 0
        self.dropped = 0
        self.overflows = 0
        self.sender: Any = None
        self.rtp_origin: int | None = None
        self._pending: list[av.Packet] = []
        self._last_pts: int | None = None
        self.last_sent: tuple[int, Any] | None = None  # (pts, time base) handed to aiortc

    def push(self, packets: list[av.Packet], keyframe: bool) -> bool:
        """Offer one encoded frame; returns False when it was dropped."""
        if self.readyState != "live":
            return False
        if self.needs_keyframe and not keyframe:
            self.dropped += 1
            return False
        if self.queue.full():
            self.dropped += self.queue.qsize() + 1
            self.overflows += 1
            while not self.queue.empty():
                self.queue.get_nowait()
            self.needs_keyframe = True
            return False
        self.needs_keyframe = False
        self.queue.put_nowait(packets)
        return True

    def rtp_timestamp(self, ticks: int) -> int | None:
        """The RTP timestamp this viewer sees for 90 kHz ``ticks`` (None until known)."""
        return None if self.rtp_origin is None else (self.rtp_origin + ticks) & RTP_MASK

    def _learn_origin(self) -> None:
        if self.rtp_origin is not None or self._last_pts is None or self.sender is None:
            return
        sent = getattr(self.sender, "_RTCRtpSender__rtp_timestamp", 0)
        if sent:
            self.rtp_origin = (sent - self._last_pts) & RTP_MASK

    async def recv(self) -> av.Packet:
        self._learn_origin()
        while not self._pending:
            if self.readyState != "live":
                raise MediaStreamError
            packets = await self.queue.get()
            if packets is None:
                raise MediaStreamError
            self._pending = list(packets)
        self.delivered += 1
        packet = self._pending.pop(0)
        if packet.pts is not None:
            self._last_pts = int(packet.pts)
            self.last_sent = (self._last_pts, packet.time_base)
        return packet

    def stop(self) -> None:
        super().stop()
        end_queue(self.queue)


def end_queue(queue: asyncio.Queue[Any]) -> None:
    """Put the end marker (None) in a bounded queue, dropping its oldest item if full, so a
    reader waiting in ``recv`` wakes and ends."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(None)
