"""An aiortc viewer of a Janus Streaming mountpoint (for tests, benchmarks and notebooks).

Janus 1.1.2 makes the offer: ``watch`` → Janus's offer (as an event) → our answer with
``start``. Frames, sizes, freezes and the analysis messages (Janus's data channel) are
measured exactly as ``WhepClient`` measures a direct viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from streamlab.forward.janus_api import JanusError, JanusSession
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.ice import local_addresses
from streamlab.webrtc.peer import close_peer

KEEPALIVE_S = 15.0


class JanusViewer(WhepClient):
    """Watches mountpoint ``mountpoint`` of the Janus at ``url`` (``http://HOST:8088/janus``).

    ``addresses``: the local addresses ICE may use (Janus never offers loopback candidates).
    """

    def __init__(self, url: str, mountpoint: int, *,
                 addresses: tuple[str, ...] = ("127.0.0.1",)) -> None:  # fmt: skip
        super().__init__(url, addresses=addresses, data_channel=False)
        self.mountpoint = mountpoint
        self.janus = JanusSession(url)
        self._keepalive: asyncio.Task[None] | None = None

    async def connect(self, *, read_codes: bool = False) -> JanusViewer:
        """Watch the mountpoint until Janus says it started (JanusError if it will not)."""
        janus = await self.janus.open()
        try:
            await janus.send({"request": "watch", "id": self.mountpoint})
            offer = await self._event_with_jsep()
            with local_addresses(self.addresses):
                pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

                @pc.on("track")
                def on_track(track: Any) -> None:
                    if track.kind == "video":
                        self._track = track
                        self._track_ready.set()

                pc.on("datachannel", self._listen)
                await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
                if "m=application" in offer["sdp"]:
                    # Janus relays a mountpoint's data once a channel is open (janus.js
                    # opens this one when it answers)
                    self._listen(pc.createDataChannel("JanusDataChannel"))
                await pc.setLocalDescription(await pc.createAnswer())
            answer = {"type": "answer", "sdp": pc.localDescription.sdp}
            await janus.send({"request": "start"}, jsep=answer)
        except BaseException:
            await self.close()
            raise
        self.codec = "video/VP8" if "VP8/90000" in offer["sdp"] else "video/H264"
        self._reader = asyncio.create_task(self._read(read_codes))
        self._watchdog = asyncio.create_task(self._recover_freezes())
        self._keepalive = asyncio.create_task(self._keep_alive())
        return self

    def _listen(self, channel: Any) -> None:
        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if len(self.received.messages) < 10_000:
                with contextlib.suppress(ValueError):
                    self.received.messages.append(json.loads(message))

    async def _event_with_jsep(self) -> dict[str, Any]:
        while True:
            event = await self.janus.next_event()
            data = event.get("plugindata", {}).get("data", {})
            if "error" in data:
                raise JanusError(f"Janus streaming: {data['error']}", data.get("error_code"))
            jsep = event.get("jsep")
            if jsep is not None and jsep.get("type") == "offer":
                return dict(jsep)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            with contextlib.suppress(JanusError):
                await self.janus.keepalive()

    async def close(self, *, delete: bool = True) -> int | None:
        """Hang up: stop reading, close the peer and the Janus session."""
        for task in (self._reader, self._watchdog, self._keepalive):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._watchdog = self._keepalive = None
        if self.pc is not None:
            await close_peer(self.pc)
            self.pc = None
        await self.janus.close()
        return None
