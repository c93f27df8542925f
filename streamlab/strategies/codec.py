"""Codec strategies: how frames reach viewers — transcoded once (vp8, h264, vp9, av1) or
passed through."""

from __future__ import annotations

from dataclasses import dataclass

from streamlab.registry import Registry


@dataclass(frozen=True, slots=True)
class CodecStrategy:
    """``mime`` is what WebRTC negotiates; ``encoder`` the PyAV encoder (None: passthrough)."""

    name: str
    mime: str
    encoder: str | None

    @property
    def passthrough(self) -> bool:
        return self.encoder is None


codecs: Registry[CodecStrategy] = Registry("codec")


@codecs.register("vp8")
def vp8() -> CodecStrategy:
    """Transcode to VP8 once per stream (libvpx realtime)."""
    return CodecStrategy("vp8", "video/VP8", "libvpx")


@codecs.register("h264")
def h264() -> CodecStrategy:
    """Transcode to H.264 constrained baseline once per stream (libx264 zerolatency)."""
    return CodecStrategy("h264", "video/H264", "libx264")


@codecs.register("vp9")
def vp9() -> CodecStrategy:
    """Transcode to VP9 profile 0 once per stream (libvpx-vp9 realtime, CBR)."""
    return CodecStrategy("vp9", "video/VP9", "libvpx-vp9")


@codecs.register("av1")
def av1() -> CodecStrategy:
    """Transcode to AV1 main profile once per stream (SVT-AV1 in its RTC mode)."""
    return CodecStrategy("av1", "video/AV1", "libsvtav1")


@codecs.register("passthrough")
def passthrough() -> CodecStrategy:
    """Forward the camera's own H.264 access units; no re-encode."""
    return CodecStrategy("passthrough", "video/H264", None)


TRANSCODED = ("vp8", "h264", "vp9", "av1")  # a fallback's order: new codecs never displace old


def offered_codecs(sdp: str) -> set[str]:
    """Lower-case video MIME types an SDP offer lists (``video/vp8``, ``video/av1``, ...)."""
    video = sdp.split("m=video", 1)[1] if "m=video" in sdp else ""
    video = video.split("\nm=", 1)[0]
    found = set()
    for line in video.splitlines():
        if line.startswith("a=rtpmap:"):
            name = line.split(" ", 1)[-1].split("/", 1)[0].strip().lower()
            found.add(f"video/{name}")
    return found


def choose_codec(preference: CodecStrategy, offered: set[str]) -> CodecStrategy | None:
    """The codec a viewer gets: the stream's preference when offered, else another one we
    can send (a transcode), else None."""
    if preference.mime.lower() in offered:
        return preference
    for name in TRANSCODED:
        candidate = codecs.create(name)
        if candidate.mime.lower() in offered:
            return candidate
    return None
