"""Answer one viewer's SDP offer: a peer connection fed by the stream's fan-out."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import structlog
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from streamlab.clock import now
from streamlab.config import StreamingConfig
from streamlab.delivery.audio import offered_audio
from streamlab.delivery.stream import StreamDelivery
from streamlab.delivery.viewer import Viewer
from streamlab.errors import NegotiationError
from streamlab.strategies.codec import offered_codecs
from streamlab.webrtc import codecs as _vp9_av1  # noqa: F401 - registers VP9/AV1 with aiortc
from streamlab.webrtc import twcc
from streamlab.webrtc.audio_track import add_audio
from streamlab.webrtc.ice import (
    allowed_networks,
    filter_candidates,
    host_addresses_for,
    local_addresses,
    rtc_configuration,
)
from streamlab.webrtc.peer import close_peer, lighten_sendonly
from streamlab.webrtc.playout import negotiate as negotiate_playout

log = structlog.get_logger("streamlab.webrtc")


@dataclass(eq=False)
class Session:
    """A viewer's peer connection; ``close()`` releases everything it holds."""

    id: str
    stream: str
    pc: RTCPeerConnection
    viewer: Viewer
    fanout: StreamDelivery
    created_at: float = field(default_factory=now)
    closed: bool = False
    connect_timer: asyncio.TimerHandle | None = None

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.connect_timer is not None:
            self.connect_timer.cancel()  # it holds the session (and its peer) until it fires
            self.connect_timer = None
        self.fanout.remove_viewer(self.id)
        await close_peer(self.pc)


def _preferences(mime: str) -> list[RTCRtpCodecCapability]:
    """The viewer's codec, then RTX (retransmissions and probe padding on a stream of
    their own, as browsers expect; a viewer that did not offer RTX simply gets none)."""
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == mime.lower()]
    if mime.lower() == "video/h264":
        chosen.sort(key=lambda c: (c.parameters or {}).get("packetization-mode") != "1")
    return chosen + [c for c in capabilities if c.mimeType.lower() == "video/rtx"]


async def answer_offer(
    fanout: StreamDelivery, offer_sdp: str, config: StreamingConfig, on_close: object = None
) -> tuple[Session, str]:
    """Build the peer connection for ``offer_sdp`` and return it with the answer SDP.

    Raises NegotiationError (never anything else) when the offer cannot be answered.
    """
    if "m=video" not in offer_sdp:
        raise NegotiationError("the offer has no video section (m=video)")
    sdp, dropped = filter_candidates(offer_sdp, allowed_networks(config))
    session_id = uuid.uuid4().hex
    viewer = fanout.add_viewer(session_id, offered_codecs(sdp))
    with local_addresses(host_addresses_for(config)):
        pc = RTCPeerConnection(rtc_configuration(config))
        session = Session(session_id, fanout.stream, pc, viewer, fanout)
        try:
            transceiver = pc.addTransceiver(viewer.track, direction="sendonly")
            lighten_sendonly(transceiver)
            transceiver.setCodecPreferences(_preferences(viewer.codec.mime))
            audio_offered = offered_audio(sdp)
            if audio_offered:
                await fanout.audio.wait_known()
            add_audio(pc, fanout.audio.add_viewer(session_id, audio_offered))

            @pc.on("datachannel")
            def on_datachannel(channel: object) -> None:
                viewer.channel = channel

            @pc.on("connectionstatechange")
            async def on_state() -> None:
                if pc.connectionState == "connected":
                    fanout.viewer_connected(session_id)
                elif pc.connectionState in ("failed", "closed"):
                    await session.close()
                    if callable(on_close):
                        on_close(session)

            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            except Exception as exc:  # aiortc raises many types for a bad offer
                raise NegotiationError(_negotiation_message(exc, viewer.codec.mime)) from None
            viewer.playout = negotiate_playout(transceiver, sdp, fanout.playout_of(viewer))
            if config.congestion_feedback == "transport-cc":
                viewer.transport_cc = twcc.negotiate(transceiver, sdp)
            try:
                answer = await pc.createAnswer()
                await pc.setLocalDescription(answer)
            except Exception as exc:
                raise NegotiationError(f"cannot answer the offer: {exc}") from None
            fanout.attach_peer(viewer, pc)
        except BaseException:
            await session.close()
            raise

    def give_up_if_not_connected() -> None:
        if not session.closed and pc.connectionState != "connected":
            log.info("viewer_never_connected", stream=fanout.stream, session=session_id)
            task = asyncio.ensure_future(session.close())
            task.add_done_callback(lambda _: on_close(session) if callable(on_close) else None)

    session.connect_timer = asyncio.get_running_loop().call_later(
        config.viewer_connect_timeout_s, give_up_if_not_connected
    )
    if dropped:
        log.info("remote_candidates_ignored", stream=fanout.stream, count=dropped)
    log.info("viewer_joined", stream=fanout.stream, session=session_id,
             viewers=len(fanout.viewers))  # fmt: skip
    return session, pc.localDescription.sdp


def _negotiation_message(exc: Exception, mime: str) -> str:
    text = str(exc) or type(exc).__name__
    if "send parameters" in text:
        return f"the offer has no codec this stream can send (needs {mime})"
    return f"invalid SDP offer: {text}"


async def close_all(sessions: list[Session]) -> None:
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
