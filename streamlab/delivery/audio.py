"""A stream's audio to its viewers: the camera's packets passed through, or Opus made once.

``audio`` setting: ``auto`` passes PCMA, PCMU and Opus through untouched to viewers that
offered that codec and transcodes anything else (AAC included) to Opus once per stream,
shared by every Opus viewer; ``opus`` always transcodes; ``off`` sends no audio track.
Packets come from the source thread (``Source.add_audio_listener``) and never wait for
video: passthrough packets go straight to the viewers' bounded queues, transcoded ones
through the transcoder's bounded queue (``opus.py``). Their RTP timestamps come from the
stream's ``MediaClock`` origin, the one the video uses, so sender reports map both tracks
to one NTP timeline (``AudioTimeline``).

``stats()["level_dbov"]`` is the camera's audio level over the last half second
(``audio_level.py``): G.711 is measured as it arrives, always (a table look-up, a few µs a
packet, in the source thread); other codecs only while the Opus transcoder decodes them,
else None — as it is without audio, or when no packet came for a second.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from fractions import Fraction
from typing import Any

import av

from streamlab.delivery.audio_level import G711, LevelMeter
from streamlab.delivery.clock import RATE, MediaClock
from streamlab.errors import ConfigError
from streamlab.sources.audio import AudioFormat, AudioUnit
from streamlab.webrtc.audio_track import AudioPacketTrack

AUDIO_MODES = ("auto", "opus", "off")
OPUS = "audio/opus"
PASSTHROUGH = {"pcm_alaw": ("audio/pcma", 8000), "pcm_mulaw": ("audio/pcmu", 8000),
               "opus": (OPUS, 48000)}  # fmt: skip
MIME_NAMES = {"audio/pcma": "audio/PCMA", "audio/pcmu": "audio/PCMU", OPUS: OPUS}
RTPMAP = re.compile(r"^a=rtpmap:\d+ ([\w-]+)/(\d+)", re.MULTILINE)


def offered_audio(sdp: str) -> set[str]:
    """The audio MIME types (lower case) an SDP offer lists; empty without ``m=audio``."""
    offered: set[str] = set()
    for section in sdp.split("\nm=")[1:]:
        if section.startswith("audio"):
            offered |= {f"audio/{name.lower()}" for name, _ in RTPMAP.findall(section)}
    return offered


def check_mode(mode: str) -> str:
    if mode not in AUDIO_MODES:
        raise ConfigError(f"audio must be one of {', '.join(AUDIO_MODES)}, got {mode!r}")
    return mode


class AudioTimeline:
    """RTP ticks at ``rate`` for the camera's audio packets, on the video's clock origin.

    Anchored to the arrival time of the first packet of a connection (the shared
    ``MediaClock``) less the packet's own duration (its first sample was captured at least
    that long before it could be sent: 20 ms for a G.711 packet, 21 ms for an AAC frame;
    a video frame leaves the camera as soon as it is encoded), then advanced by the
    camera's own audio timestamps (sample-exact, no jitter); re-anchored on a new
    connection or a drift over half a second; never backwards.
    """

    def __init__(self, clock: MediaClock, rate: int) -> None:
        self.clock = clock
        self.rate = rate
        self.anchors = 0
        self._anchor: tuple[int, int] | None = None  # (camera ticks, our ticks)
        self._connection = -1
        self._last = -1

    def arrival(self, arrival_s: float) -> int:
        return self.clock.ticks(arrival_s) * self.rate // RATE

    def ticks(self, unit: AudioUnit, arrival_s: float) -> int:
        arrival = self.arrival(arrival_s - unit_duration_s(unit))
        camera = None if unit.pts is None else round(unit.pts * unit.time_base * self.rate)
        if camera is None:
            ticks = arrival
        else:
            if self._anchor is None or unit.connection != self._connection:
                self._anchor = (camera, max(arrival, self._last + 1))
                self._connection = unit.connection
                self.anchors += 1
            ticks = self._anchor[1] + camera - self._anchor[0]
            if abs(ticks - arrival) > self.rate // 2:
                self._anchor = (camera, max(arrival, self._last + 1))
                self.anchors += 1
                ticks = self._anchor[1]
        ticks = max(ticks, self._last + 1)
        self._last = ticks
        return ticks


def unit_duration_s(unit: AudioUnit) -> float:
    """How much sound one camera packet holds: G.711 is a byte a sample, AAC 1024 samples
    a frame; 20 ms for anything else."""
    format_ = unit.format
    if not format_.rate:
        return 0.0
    if format_.codec in PASSTHROUGH and format_.codec != "opus":
        return len(unit.data) / (format_.rate * max(1, format_.channels))
    if format_.codec == "aac":
        return 1024 / format_.rate
    return 0.02


def packet(data: bytes, ticks: int, rate: int) -> av.Packet:
    """An encoded audio packet for aiortc: ``ticks`` at ``rate`` become its RTP timestamp."""
    out = av.Packet(data)
    out.pts = ticks
    out.time_base = Fraction(1, rate)
    return out


class StreamAudio:
    """The audio of one stream: which codec each viewer gets, and the packets to it."""

    def __init__(self, mode: str, clock: MediaClock, stream: str = "") -> None:
        self.mode = check_mode(mode)
        self.clock = clock
        self.stream = stream
        self.format: AudioFormat | None = None
        self.tracks: dict[str, AudioPacketTrack] = {}
        self.transcoder: Any = None  # streamlab.delivery.opus.OpusTranscoder while needed
        self.passthrough_timeline: AudioTimeline | None = None
        self.packets_in = 0
        self.packets_passed = 0
        self.transcoder_drops = 0
        self.level = LevelMeter()  # G.711 here, decoded audio in the transcoder
        self._loop: asyncio.AbstractEventLoop | None = None
        self._remove: Any = None
        self._passing = False  # read from the source thread
        self._transcoding = False

    # -- source --------------------------------------------------------------------------

    def attach(self, source: Any) -> None:
        """Listen to ``source``'s audio packets (call on the event loop)."""
        if self._remove is not None or not hasattr(source, "add_audio_listener"):
            return
        self._loop = asyncio.get_running_loop()
        self.source = source
        self._remove = source.add_audio_listener(self._on_unit)

    def _on_unit(self, unit: AudioUnit, received_at: float) -> None:
        """From the source thread: queue only, never wait."""
        self.packets_in += 1
        format_ = unit.format
        if format_.codec in G711:
            self.level.add_g711(unit.data, format_.codec, format_.rate or 8000,
                                format_.channels or 1)  # fmt: skip
        loop = self._loop
        if loop is None:
            return
        if unit.format != self.format:
            loop.call_soon_threadsafe(self._format_seen, unit.format)
        if self._passing:
            loop.call_soon_threadsafe(self._pass, unit, received_at)
        transcoder = self.transcoder
        if self._transcoding and transcoder is not None:
            transcoder.put(unit, received_at)

    def _format_seen(self, format_: AudioFormat) -> None:
        self.format = format_

    def current_format(self) -> AudioFormat | None:
        """The camera's audio format (from its packets, or the source's stats)."""
        if self.format is None:
            stats = getattr(getattr(self, "source", None), "stats", None)
            self.format = getattr(stats, "audio", None)
        return self.format

    def _pass(self, unit: AudioUnit, received_at: float) -> None:
        mime, rate = PASSTHROUGH.get(unit.format.codec, ("", 0))
        tracks = [t for t in self.tracks.values() if t.mime.lower() == mime]
        if not tracks:
            return
        if self.passthrough_timeline is None or self.passthrough_timeline.rate != rate:
            self.passthrough_timeline = AudioTimeline(self.clock, rate)
        ticks = self.passthrough_timeline.ticks(unit, received_at)
        self.packets_passed += 1
        for track in tracks:
            track.push(packet(unit.data, ticks, rate))

    def deliver_opus(self, data: bytes, ticks: int) -> None:
        """From the transcoder (via the loop): one Opus packet to every Opus viewer."""
        for track in self.tracks.values():
            if track.mime.lower() == OPUS:
                track.push(packet(data, ticks, 48000))

    # -- viewers -------------------------------------------------------------------------

    def codec_for(self, offered: set[str]) -> str | None:
        """The audio MIME type a viewer that offered ``offered`` gets (None: no audio)."""
        format_ = self.current_format()
        if self.mode == "off" or format_ is None or not offered:
            return None
        mime, rate = PASSTHROUGH.get(format_.codec, ("", 0))
        mono = mime == OPUS or format_.channels == 1
        direct = mime in offered and format_.rate == rate and mono
        if self.mode == "auto" and direct:
            return mime
        return OPUS if OPUS in offered else None

    def add_viewer(self, viewer_id: str, offered: set[str]) -> AudioPacketTrack | None:
        """An audio track for a new viewer, or None when it gets no audio."""
        mime = self.codec_for(offered)
        if mime is None:
            return None
        format_ = self.format
        assert format_ is not None
        passthrough = self.mode == "auto" and mime == PASSTHROUGH.get(format_.codec, ("",))[0]
        track = AudioPacketTrack(MIME_NAMES[mime], passthrough=passthrough)
        self.tracks[viewer_id] = track
        self._sync()
        return track

    def remove_viewer(self, viewer_id: str) -> None:
        track = self.tracks.pop(viewer_id, None)
        if track is not None:
            track.stop()
            self._sync()

    def set_mode(self, mode: str) -> None:
        """A live change: ``off`` ends every viewer's audio; the others apply to viewers
        who join from now (a viewer's codec was fixed by its negotiation)."""
        self.mode = check_mode(mode)
        if mode == "off":
            for viewer_id in list(self.tracks):
                self.remove_viewer(viewer_id)

    def _sync(self) -> None:
        """Start the transcoder with the first viewer that needs it, stop it with the last."""
        passing = [t for t in self.tracks.values() if t.passthrough]
        opus = [t for t in self.tracks.values() if not t.passthrough]
        self._passing = bool(passing)
        if opus and self.transcoder is None and self._loop is not None:
            from streamlab.delivery.opus import OpusTranscoder

            self.transcoder = OpusTranscoder(self, self._loop)
            self.transcoder.start()
        elif not opus and self.transcoder is not None:
            self._retire()
        self._transcoding = bool(opus)

    def _retire(self) -> None:
        transcoder, self.transcoder = self.transcoder, None
        if transcoder is not None:
            self.transcoder_drops += transcoder.dropped
            transcoder.stop()

    def close(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None
        for viewer_id in list(self.tracks):
            self.remove_viewer(viewer_id)
        self._retire()

    def stats(self) -> dict[str, Any]:
        format_ = self.current_format()
        transcoder = self.transcoder
        return {
            "setting": self.mode,
            "source": format_.to_dict() if format_ is not None else None,
            "viewers": dict(Counter(t.mime for t in self.tracks.values())),
            "packets_in": self.packets_in,
            "packets_passed": self.packets_passed,
            "transcoding": transcoder is not None,
            "opus_packets": transcoder.encoded if transcoder is not None else 0,
            "transcoder_drops": self.transcoder_drops + (transcoder.dropped if transcoder else 0),
            "viewer_drops": sum(t.dropped for t in self.tracks.values()),
            "level_dbov": self.level.dbov(),
        }
