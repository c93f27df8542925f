"""A viewer's video track: pre-encoded packets from the fan-out, through a bounded queue."""

from __future__ import annotations

import asyncio

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError


class ViewerTrack(MediaStreamTrack):
    """Yields ``av.Packet``s so aiortc only packetizes (no per-viewer encoder).

    The queue holds at most ``maxsize`` encoded frames. When a slow viewer's queue is
    full, its queued frames are dropped and it waits for the next keyframe (a decoder
    cannot skip a frame of a running stream), so it never slows the other viewers.
    """

    kind = "video"

    def __init__(self, maxsize: int = 4) -> None:
        super().__init__()
        self.queue: asyncio.Queue[list[av.Packet] | None] = asyncio.Queue(maxsize=maxsize)
        self.needs_keyframe = True
        self.delivered = 0
        self.dropped = 0
        self._pending: list[av.Packet] = []

    def push(self, packets: list[av.Packet], keyframe: bool) -> bool:
        """Offer one encoded frame; returns False when it was dropped."""
        if self.readyState != "live":
            return False
        if self.needs_keyframe and not keyframe:
            self.dropped += 1
            return False
        if self.queue.full():
            self.dropped += self.queue.qsize() + 1
            while not self.queue.empty():
                self.queue.get_nowait()
            self.needs_keyframe = True
            return False
        self.needs_keyframe = False
        self.queue.put_nowait(packets)
        return True

    async def recv(self) -> av.Packet:
        while not self._pending:
            if self.readyState != "live":
                raise MediaStreamError
            packets = await self.queue.get()
            if packets is None:
                raise MediaStreamError
            self._pending = list(packets)
        self.delivered += 1
        return self._pending.pop(0)

    def stop(self) -> None:
        super().stop()
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)
