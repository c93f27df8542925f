"""A WHEP client on aiortc: for tests, benchmarks and notebooks (``await WhepClient(url)``).

It receives decoded frames, reads their frame codes (end-to-end latency) and the analysis
messages from the data channel. All on loopback unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from streamlab import framecode
from streamlab.clock import now_ms
from streamlab.errors import NegotiationError
from streamlab.webrtc import twcc
from streamlab.webrtc.codecs import register
from streamlab.webrtc.ice import local_addresses
from streamlab.webrtc.peer import close_peer

FREEZE_S = 0.4


def now_s() -> float:
    return time.monotonic()


@dataclass
class Received:
    """What a client measured."""

    frames: int = 0
    codes: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    arrivals: list[float] = field(default_factory=list)  # wall-clock second of each frame
    frame_sizes: list[tuple[int, int]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    audio_frames: int = 0  # decoded audio frames (with ``audio=...``)
    audio_samples: int = 0
    audio_peak: int = 0  # the loudest sample seen (s16): 0 is silence


class WhepClient:
    """Connects to ``POST url`` (a WHEP endpoint) and receives the stream."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        addresses: tuple[str, ...] = ("127.0.0.1",),
        codecs: tuple[str, ...] | None = None,
        data_channel: bool = True,
        transport_cc: bool = True,
        audio: tuple[str, ...] = (),
    ) -> None:
        """``codecs`` limits the offer to these video MIME types (e.g. ``("video/H264",)``,
        ``("video/AV1",)``), like a browser that can decode only those. ``transport_cc``
        offers transport-wide congestion control and, when the server answers it, reports
        each packet's arrival as browsers do (aiortc alone sends only REMB). ``audio``
        also offers audio in these MIME types (e.g. ``("audio/PCMA", "audio/opus")``) and
        counts the decoded audio frames; ``audio_codec`` is the one answered."""
        register()  # VP9 and AV1 next to aiortc's VP8 and H.264
        self.url = url
        self.codecs = codecs
        self.data_channel = data_channel
        self.token = token
        self.addresses = addresses
        self.pc: RTCPeerConnection | None = None
        self.location: str | None = None
        self.received = Received()
        self.codec: str | None = None
        self.audio = audio
        self.audio_codec: str | None = None
        self._audio_reader: asyncio.Task[None] | None = None
        self.transport_cc = transport_cc
        self.feedback_writer: twcc.FeedbackWriter | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.recoveries = 0
        self._track: Any = None
        self._track_ready = asyncio.Event()
        self._progress = asyncio.Event()

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def connect(self, *, read_codes: bool = True) -> WhepClient:
        with local_addresses(self.addresses):
            pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            transceiver = pc.addTransceiver("video", direction="recvonly")
            if self.codecs:
                wanted = {c.lower() for c in self.codecs} | {"video/rtx"}
                capabilities = RTCRtpReceiver.getCapabilities("video")
                offered = capabilities.codecs if capabilities is not None else []
                transceiver.setCodecPreferences(
                    [c for c in offered if c.mimeType.lower() in wanted]
                )
            if self.audio:
                wanted_audio = {c.lower() for c in self.audio}
                audio_caps = RTCRtpReceiver.getCapabilities("audio")
                pc.addTransceiver("audio", direction="recvonly").setCodecPreferences(
                    [c for c in (audio_caps.codecs if audio_caps else [])
                     if c.mimeType.lower() in wanted_audio]
                )  # fmt: skip
            if self.data_channel:
                channel = pc.createDataChannel("analysis")

                @channel.on("message")
                def on_message(message: str) -> None:
                    if len(self.received.messages) < 10_000:
                        self.received.messages.append(json.loads(message))

            @pc.on("track")
            def on_track(track: Any) -> None:
                if track.kind == "audio":
                    self._audio_reader = asyncio.ensure_future(self._read_audio(track))
                    return
                self._track = track
                self._track_ready.set()

            await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        if self.transport_cc:
            offer = twcc.offer_with_extension(offer)
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url, data=offer, headers=self._headers("application/sdp")) as response,
        ):
            body = await response.text()
            if response.status != 201:
                await self.close()
                raise NegotiationError(f"WHEP offer refused: {response.status} {body.strip()}")
            self.location = urljoin(self.url, response.headers["Location"])
        await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
        for transceiver in pc.getTransceivers():
            if transceiver.receiver and transceiver._codecs and transceiver.kind == "audio":
                self.audio_codec = transceiver._codecs[0].mimeType
            elif transceiver.receiver and transceiver._codecs:
                self.codec = transceiver._codecs[0].mimeType
        extension_id = twcc.offered_id(body) if self.transport_cc else None
        dtls = next((t.receiver.transport for t in pc.getTransceivers() if t.receiver), None)
        if extension_id is not None and dtls is not None:
            self.feedback_writer = twcc.FeedbackWriter(dtls, extension_id, time.monotonic)
            self.feedback_writer.attach()
        self._reader = asyncio.create_task(self._read(read_codes))
        self._watchdog = asyncio.create_task(self._recover_freezes())
        return self

    async def _recover_freezes(self) -> None:
        """Behave like a browser when the picture freezes while packets keep arriving.

        aiortc's receiver holds an incomplete frame until 512 more packets arrive (tens of
        seconds at a low bitrate) before it asks for a keyframe; a browser gives up on it
        within a few hundred ms. So: after ``FREEZE_S`` without a frame while RTP still
        comes in, drop the incomplete frames and send a PLI (at most every ``FREEZE_S``)."""
        pc = self.pc
        assert pc is not None
        last_frames, last_packets, frozen_since = -1, -1, now_s()
        while True:
            await asyncio.sleep(FREEZE_S / 4)
            receiver = next((t.receiver for t in pc.getTransceivers() if t.receiver), None)
            streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", {})
            packets = sum(s.packets_received for s in streams.values())
            if self.received.frames != last_frames or packets == last_packets:
                last_frames, last_packets, frozen_since = self.received.frames, packets, now_s()
                continue
            last_packets = packets
            if now_s() - frozen_since < FREEZE_S:
                continue
            frozen_since = now_s()
            self.recoveries += 1
            buffer = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
            if buffer is not None:
                buffer._packets = [None] * buffer.capacity
                buffer._origin = None
            await self.request_keyframe()

    async def request_keyframe(self) -> int:
        """Ask the sender for a keyframe now: one RTCP PLI per received video stream, as a
        browser sends when it cannot decode. Returns how many PLIs were sent."""
        pc = self.pc
        if pc is None:
            return 0
        receiver = next((t.receiver for t in pc.getTransceivers() if t.receiver), None)
        streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", {})
        sent = 0
        for ssrc in list(streams):
            with contextlib.suppress(Exception):
                await receiver._send_rtcp_pli(ssrc)  # type: ignore[union-attr]
                sent += 1
        return sent

    async def _read(self, read_codes: bool) -> None:
        await self._track_ready.wait()
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                return
            self._on_frame(frame, read_codes)

    def _on_frame(self, frame: Any, read_codes: bool) -> None:
        """Count one decoded frame (its arrival and size, the first 100,000 kept); with
        ``read_codes`` read its frame code too."""
        received = self.received
        received.frames += 1
        self._progress.set()
        received.sizes.add((frame.width, frame.height))
        if len(received.arrivals) < 100_000:
            received.arrivals.append(time.time())
            received.frame_sizes.append((frame.width, frame.height))
        if read_codes:
            code = framecode.try_read(frame.to_ndarray(format="bgr24"))
            if code is not None:
                received.codes += 1
                received.seqs.append(code.seq)
                received.latencies_ms.append(now_ms() - code.captured_ms)

    async def _read_audio(self, track: Any) -> None:
        received = self.received
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            received.audio_frames += 1
            received.audio_samples += frame.samples
            if received.audio_frames % 10 == 1:  # a sample of the frames is enough
                received.audio_peak = max(received.audio_peak, int(abs(frame.to_ndarray()).max()))

    async def wait_frames(self, count: int, within_s: float = 30.0) -> Received:
        """Until ``count`` frames have arrived in all (TimeoutError after ``within_s``)."""

        async def enough() -> None:
            while self.received.frames < count:
                self._progress.clear()
                await self._progress.wait()

        await asyncio.wait_for(enough(), within_s)
        return self.received

    async def close(self, *, delete: bool = True) -> int | None:
        """Close the peer connection; with ``delete`` also DELETE the WHEP session."""
        status = None
        if delete and self.location:
            async with (
                aiohttp.ClientSession() as http,
                http.delete(self.location, headers=self._headers()) as response,
            ):
                status = response.status
        for task in (self._reader, self._watchdog, self._audio_reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.feedback_writer is not None:
            self.feedback_writer.close()
            self.feedback_writer = None
        if self.pc is not None:
            await close_peer(self.pc)
        return status
