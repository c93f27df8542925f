"""A camera's audio, beside its video: encoded packets handed on as they are demuxed.

Audio is never decoded in the source thread: each packet goes straight to the listeners
(``Source.add_audio_listener``), which must only queue it (the delivery's bounded queue
counts what it drops). A camera without audio is normal: no listener is ever called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What the camera sends: FFmpeg codec name (``pcm_alaw``, ``pcm_mulaw``, ``aac``,
    ``opus``), sample rate, channels, and the decoder's extradata (AAC's config)."""

    codec: str
    rate: int
    channels: int
    extradata: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"codec": self.codec, "rate": self.rate, "channels": self.channels}


@dataclass(frozen=True, slots=True)
class AudioUnit:
    """One encoded audio packet of the camera. ``connection`` counts the source's connects:
    a new value means a new stream (a decoder must start again, clocks re-anchor)."""

    data: bytes
    format: AudioFormat
    pts: int | None
    time_base: Fraction
    connection: int


AudioListener = Callable[[AudioUnit, float], None]


def audio_format(stream: Any) -> AudioFormat:
    """The AudioFormat of a PyAV audio stream."""
    context = stream.codec_context
    extradata = bytes(context.extradata) if context.extradata else None
    channels = getattr(context, "channels", 0) or context.layout.nb_channels
    return AudioFormat(context.name, int(context.sample_rate or 0), int(channels), extradata)
