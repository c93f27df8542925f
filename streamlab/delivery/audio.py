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
AUDIO_KNOWN_WITHIN_S = 5.0
HOLD_FOR_VIDEO_S = 1.0
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

    Anchored once per camera connection, then advanced by the camera's own audio
    timestamps (sample-exact, no jitter). The anchor is the camera's own timing: its audio
    and video timestamps share one clock (the RTSP demuxer lines them up by RTP-Info and
    sender reports), and ``MediaClock.camera_offset()`` says where that clock lands on the
    video's ticks, so a sound gets the ticks of the picture taken at the same instant.
    Until the video knows that offset (its first ten frames) a connection's first packets
    are held back (``ticks`` returns None: not sent), for at most ``HOLD_FOR_VIDEO_S``;
    after that the anchor is the packet's arrival less its own duration (its first sample
    was captured at least that long before it could be sent), moved to the video's once
    known. Re-anchored on arrival when it drifts over half a second from it; never
    backwards.
    """

    def __init__(self, clock: MediaClock, rate: int) -> None:
        self.clock = clock
        self.rate = rate
        self.anchors = 0
        self._anchor: tuple[int, int] | None = None  # (camera ticks, our ticks)
        self._connection = -1
        self._last = -1
        self.by_video = False  # the anchor came from the video's camera offset
        self.jumped = 0  # how far the last call's re-anchor moved this connection's ticks
        self.held = 0  # packets held back while the video's offset was unknown
        self._hold: tuple[int, float] | None = None  # (connection, first arrival)

    def arrival(self, arrival_s: float) -> int:
        return self.clock.ticks(arrival_s) * self.rate // RATE

    def _video_ticks(self, unit: AudioUnit) -> int | None:
        """Our ticks for this packet by the camera's clock and the video's offset."""
        offset = self.clock.camera_offset()
        if offset is None or unit.pts is None:
            return None
        camera = round(unit.pts * unit.time_base * RATE)
        return (camera + offset) * self.rate // RATE

    def _anchor_at(self, camera: int, ours: int, by_video: bool) -> tuple[int, int]:
        self._anchor = (camera, max(ours, self._last + 1))
        self.by_video = by_video
        self.anchors += 1
        return self._anchor

    def _holding(self, unit: AudioUnit, arrival_s: float) -> bool:
        if self._hold is None or self._hold[0] != unit.connection:
            self._hold = (unit.connection, arrival_s)
        if arrival_s - self._hold[1] < HOLD_FOR_VIDEO_S:
            self.held += 1
            return True
        return False

    def ticks(self, unit: AudioUnit, arrival_s: float) -> int | None:
        """The packet's RTP ticks at ``rate``; None: held back (not to be sent)."""
        self.jumped = 0
        arrival = self.arrival(arrival_s - unit_duration_s(unit))
        camera = None if unit.pts is None else round(unit.pts * unit.time_base * self.rate)
        if camera is None:
            ticks = arrival
        else:
            video = self._video_ticks(unit)
            anchor = self._anchor
            if anchor is None or unit.connection != self._connection:
                if video is None and self._holding(unit, arrival_s):
                    return None
                self._connection = unit.connection
                ours = video if video is not None else arrival
                anchor = self._anchor_at(camera, ours, video is not None)
            elif video is not None and not self.by_video:
                before = anchor[1] + camera - anchor[0]
                anchor = self._anchor_at(camera, video, True)
                self.jumped = anchor[1] - before
            ticks = anchor[1] + camera - anchor[0]
            if abs(ticks - arrival) > self.rate // 2:
                ticks = self._anchor_at(camera, arrival, False)[1]
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

    async def wait_known(self, within_s: float = AUDIO_KNOWN_WITHIN_S) -> None:
        """Wait (at most ``within_s``) until the source knows whether it has audio: a viewer
        who offered audio before an RTSP camera first connected would otherwise be answered
        without an audio track, and WHEP cannot add one later."""
        known = getattr(getattr(self, "source", None), "audio_known", None)
        if self.mode == "off" or not callable(known):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while not known() and loop.time() < deadline:  # noqa: ASYNC110 (set by a thread)
            await asyncio.sleep(0.05)

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
        if ticks is None:
            return
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
            "anchored_by": self._anchored_by(),
        }

    def _anchored_by(self) -> str | None:
        """What put the audio on the video's ticks: ``video`` (the camera's own clock, by
        the video's offset) or ``arrival`` (until the video knows it); None: no audio out."""
        transcoder = self.transcoder
        timeline = transcoder.timeline if transcoder is not None else self.passthrough_timeline
        if timeline is None or timeline.anchors == 0:
            return None
        return "video" if timeline.by_video else "arrival"
