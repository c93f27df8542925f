"""Plug VP9, AV1 and H.265 into aiortc's codec tables, once per process (``register()``).

aiortc negotiates from ``aiortc.codecs.CODECS`` and looks codecs up through module-level
functions that ``rtcrtpsender``/``rtcrtpreceiver`` imported by name; ``register`` appends the
codecs (with RTX, after every existing payload type, so VP8/H.264 keep theirs) and wraps
those functions where they are looked up. It also keeps aiortc from matching a VP9 profile or
AV1 profile we do not send (aiortc compares only the MIME type for them), and makes its answers
keep the offer's payload type in 35-63 too: Chromium offers AV1 there (45) once 96-127 are
taken, and aiortc answered with its own type, which the offerer then drops (RFC 3264 6.1: the
answer uses the offer's payload types).
"""

from __future__ import annotations

import aiortc.codecs as aiortc_codecs
import aiortc.rtcpeerconnection as aiortc_peer
import aiortc.rtcrtpreceiver as aiortc_receiver
import aiortc.rtcrtpsender as aiortc_sender
import aiortc.rtp as aiortc_rtp
from aiortc.codecs.base import Decoder, Encoder
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters

from streamlab.webrtc.codecs.av1 import Av1Decoder, Av1Encoder
from streamlab.webrtc.codecs.framing import frame_payload
from streamlab.webrtc.codecs.h265 import H265Decoder, H265Encoder
from streamlab.webrtc.codecs.vp9 import Vp9Decoder, Vp9Encoder

CLOCK_RATE = 90000
# mime -> fmtp parameters; profile 0 is 8-bit 4:2:0, what libvpx-vp9 and SVT-AV1 send here;
# H.265 profile 1 is Main (8-bit 4:2:0), what cameras send (passed through, never encoded)
PROFILES: dict[str, tuple[str, str]] = {
    "video/vp9": ("profile-id", "0"),
    "video/av1": ("profile", "0"),
    "video/h265": ("profile-id", "1"),
}
_ENCODERS: dict[str, type[Encoder]] = {"video/vp9": Vp9Encoder, "video/av1": Av1Encoder,
                                       "video/h265": H265Encoder}  # fmt: skip
_DECODERS: dict[str, type[Decoder]] = {"video/vp9": Vp9Decoder, "video/av1": Av1Decoder,
                                       "video/h265": H265Decoder}  # fmt: skip
_MIMES = {"video/vp9": "video/VP9", "video/av1": "video/AV1", "video/h265": "video/H265"}
# dynamic payload types: 96-127, and 35-63, which browsers use once those are taken (RFC 5761 4)
DYNAMIC_PAYLOAD_TYPES = frozenset(range(35, 64)) | frozenset(range(96, 128))
_registered = False


def _feedback() -> list[RTCRtcpFeedback]:
    return [
        RTCRtcpFeedback(type="nack"),
        RTCRtcpFeedback(type="nack", parameter="pli"),
        RTCRtcpFeedback(type="goog-remb"),
    ]


def _append_codecs() -> None:
    video = aiortc_codecs.CODECS["video"]
    payload_type = max((c.payloadType or 0 for c in video), default=96) + 1
    for key, mime in _MIMES.items():
        name, value = PROFILES[key]
        video.append(
            RTCRtpCodecParameters(
                mimeType=mime,
                clockRate=CLOCK_RATE,
                payloadType=payload_type,
                rtcpFeedback=_feedback(),
                parameters={name: value},
            )
        )
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx",
                clockRate=CLOCK_RATE,
                payloadType=payload_type + 1,
                parameters={"apt": payload_type},
            )
        )
        payload_type += 2


def _profile(codec: RTCRtpCodecParameters) -> str | None:
    key = codec.mimeType.lower()
    if key not in PROFILES:
        return None
    name, default = PROFILES[key]
    return str(codec.parameters.get(name, default))


def _wrap() -> None:
    original_encoder = aiortc_codecs.get_encoder
    original_decoder = aiortc_codecs.get_decoder
    original_depayload = aiortc_codecs.depayload
    original_compatible = aiortc_peer.is_codec_compatible

    def get_encoder(codec: RTCRtpCodecParameters) -> Encoder:
        found = _ENCODERS.get(codec.mimeType.lower())
        return found() if found is not None else original_encoder(codec)

    def get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
        found = _DECODERS.get(codec.mimeType.lower())
        return found() if found is not None else original_decoder(codec)

    def depayload(codec: RTCRtpCodecParameters, payload: bytes) -> bytes:
        if codec.mimeType.lower() in _DECODERS:
            return frame_payload(payload)
        return original_depayload(codec, payload)

    def is_codec_compatible(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters) -> bool:
        return original_compatible(a, b) and _profile(a) == _profile(b)

    for module in (aiortc_codecs, aiortc_sender):
        module.get_encoder = get_encoder  # type: ignore[attr-defined]
    for module in (aiortc_codecs, aiortc_receiver):
        module.get_decoder = get_decoder  # type: ignore[attr-defined]
        module.depayload = depayload  # type: ignore[attr-defined]
    aiortc_peer.is_codec_compatible = is_codec_compatible


def register() -> None:
    """Add ``video/VP9`` (profile-id=0), ``video/AV1`` (profile=0) and ``video/H265``
    (profile-id=1, Main) to what aiortc offers, answers, sends and receives. Idempotent;
    call before creating peer connections."""
    global _registered
    if _registered:
        return
    _registered = True
    _append_codecs()
    aiortc_rtp.DYNAMIC_PAYLOAD_TYPES = DYNAMIC_PAYLOAD_TYPES  # type: ignore[assignment]
    _wrap()


def registered() -> bool:
    """Whether ``register()`` has run in this process."""
    return _registered
