"""``rtsp://`` cameras via PyAV: demux + decode in the source thread, reconnecting forever.

Reconnects use exponential backoff with full jitter and a cap; a circuit breaker pauses
after many failed connects in a row (then one trial connect: half-open); a watchdog turns a
silent stream into a stall and a reconnect. Credentials in the URL never reach logs, names,
errors or metrics.
"""

from __future__ import annotations

import contextlib
import time
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import av
import structlog

from streamlab.clock import now
from streamlab.config import StreamingConfig, load_config
from streamlab.errors import SourceError, SourceTimeoutError
from streamlab.events import EventBus, Reconnecting, Stalled
from streamlab.frame import EncodedUnit, Frame, decoded_pixels
from streamlab.manager import StreamState
from streamlab.sources import interrupt
from streamlab.sources.audio import audio_format
from streamlab.sources.backoff import Backoff, BreakerState, CircuitBreaker
from streamlab.sources.base import Source
from streamlab.sources.transport import TransportChooser, is_refusal
from streamlab.sources.url import default_name, redact, redact_text

log = structlog.get_logger("streamlab.rtsp")

FAST_START = {"probesize": "32768", "analyzeduration": "0", "max_delay": "0"}
CHUNKS = int(av.codec.context.Flags2.chunks)


class HeldGroup:
    """Packets since the last keyframe (bounded), for a decoder that resumes mid-group."""

    MAX_PACKETS = 1200

    def __init__(self) -> None:
        self.packets: list[Any] = []
        self._overflowed = False

    def add(self, packet: Any, keyframe: bool) -> None:
        if keyframe:
            self.packets, self._overflowed = [], False
        elif self._overflowed or not self.packets:
            return
        if len(self.packets) >= self.MAX_PACKETS:
            self.packets, self._overflowed = [], True
            return
        self.packets.append(packet)


def validate_rtsp_url(url: str) -> None:
    """Raise SourceError for a URL that cannot name an RTSP stream."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SourceError(f"malformed RTSP URL {redact(url)}: {exc}") from None
    if parts.scheme not in ("rtsp", "rtsps"):
        raise SourceError(f"not an RTSP URL: {redact(url)}")
    if not parts.hostname:
        raise SourceError(f"malformed RTSP URL {redact(url)}: no host")
    if port == 0:
        raise SourceError(f"malformed RTSP URL {redact(url)}: port 0")


def describe_error(exc: BaseException, url: str) -> str:
    """A one-line, credential-free explanation of an FFmpeg/OS error."""
    text = redact_text(str(exc), url)
    lowered = text.lower()
    if "connection refused" in lowered:
        return f"connection refused by {redact(url)}"
    if "5xx" in lowered or "503" in lowered or "server error" in lowered:
        return f"camera at {redact(url)} answered 503: its stream could not be started"
    if "404" in lowered or "not found" in lowered:
        return f"no stream at {redact(url)} (404)"
    if "401" in lowered or "unauthorized" in lowered:
        return f"camera at {redact(url)} refused the credentials (401)"
    if isinstance(exc, TimeoutError | av.ExitError) or "timed out" in lowered:
        return f"no answer from {redact(url)} in time"
    if "invalid data" in lowered:
        return f"{redact(url)} answered with something that is not RTSP"
    reason = getattr(exc, "strerror", None) or text  # without PyAV's "[Errno N]" and the URL
    return f"cannot read {redact(url)}: {redact_text(str(reason), url)}"


class RtspSource(Source):
    """An RTSP camera. ``retry=False`` makes the first failed connect final (for probes).

    ``rtsp_transport=auto`` connects over TCP and switches to UDP when the camera refuses
    TCP (461), back to TCP when UDP stays silent; ``stats.transport`` says which is in use.
    The backoff resets only after ``healthy_reset_s`` of streaming, so a camera that sends
    a frame and drops backs off like one that refuses. ``stop()`` interrupts a blocked
    connect or read within a fraction of a second.
    """

    scheme = "rtsp"

    def __init__(
        self,
        url: str,
        *,
        config: StreamingConfig | None = None,
        bus: EventBus | None = None,
        name: str | None = None,
        retry: bool = True,
    ) -> None:
        validate_rtsp_url(url)
        self._url = url
        super().__init__(name or default_name(url), bus=bus)
        self.config = config or load_config()
        self.retry = retry
        self._audio_known = False  # until the first connection lists the camera's streams
        self.backoff = Backoff(self.config.reconnect_initial_s, self.config.reconnect_max_s)
        self.breaker = CircuitBreaker(self.config.circuit_failures, self.config.circuit_open_s)
        self.transport = TransportChooser(self.config.rtsp_transport)
        self.last_error: str | None = None
        self._streaming_since: float | None = None
        interrupt.install()

    @property
    def display_url(self) -> str:
        return redact(self._url)

    def __repr__(self) -> str:
        return f"RtspSource({self.display_url!r}, state={self.state.state})"

    def _options(self) -> dict[str, str]:
        # FFmpeg's own socket timeout (µs) bounds every read, also the first media after
        # PLAY inside av.open (which PyAV bounds only by the whole open timeout): a camera
        # that answers PLAY and then sends nothing is retried after the stall timeout.
        return {"rtsp_transport": self.transport.current, "timeout": str(
            int(self._io_timeout_s() * 1_000_000)), **FAST_START}  # fmt: skip

    def _io_timeout_s(self) -> float:
        """Silence tolerated on the socket: the stall timeout (at least 1 s, so a slow
        RTSP answer is not a failure), never more than the open timeout."""
        open_timeout = self.config.rtsp_timeout_ms / 1000.0
        return min(open_timeout, max(self.config.stall_timeout_s, 1.0))

    def _run(self) -> None:
        interrupt.watch(self._stopping)
        while not self._stopping.is_set():
            if not self.breaker.allow():
                self.state.to_if_allowed(StreamState.ERROR, "circuit open")
                self._stopping.wait(self.breaker.remaining_s())
                continue
            if self.breaker.state is BreakerState.HALF_OPEN:
                self.state.to_if_allowed(StreamState.CONNECTING, "circuit half-open")
            self._streaming_since = None
            refused = silent = False
            try:
                self._stream()
                self.last_error = f"{self.display_url} ended the stream"
            except (SourceError, av.FFmpegError, OSError) as exc:
                refused = is_refusal(exc)
                silent = isinstance(exc, TimeoutError | av.ExitError)
                self.last_error = (
                    str(exc) if isinstance(exc, SourceError) else describe_error(exc, self._url)
                )
            if self._stopping.is_set():
                return
            self.stats.errors = [*self.stats.errors[-9:], self.last_error]
            if self._streaming_since is not None:  # it streamed: judge how long
                if time.monotonic() - self._streaming_since >= self.config.healthy_reset_s:
                    self.backoff.reset()
            else:
                tried = self.transport.current
                if self.transport.after_failure(refused=refused, silent_udp=silent):
                    log.info("rtsp_transport_switch", source=self.display_url, tried=tried,
                             now=self.transport.current, error=self.last_error)  # fmt: skip
                    continue  # the other transport, at once: not an outage
                if self.breaker.record_failure():
                    log.warning("circuit_opened", source=self.display_url, error=self.last_error)
            self.stats.outage = self.last_error
            if not self.retry:
                self.state.to_if_allowed(StreamState.ERROR, self.last_error)
                raise SourceError(self.last_error)
            delay = self.backoff.next_delay()
            self.stats.reconnects += 1
            self.state.to_if_allowed(StreamState.RECONNECTING, self.last_error)
            self.bus.emit(Reconnecting(self.name, self.stats.reconnects, delay, self.last_error))
            log.info(
                "reconnecting", source=self.display_url, delay_s=round(delay, 3),
                error=self.last_error,
            )  # fmt: skip
            if self._stopping.wait(delay):
                return
            self.state.to_if_allowed(StreamState.CONNECTING, "retry")

    def _stream(self) -> None:
        """Connect, then demux + decode until the stream ends, stalls or we stop."""
        open_timeout = self.config.rtsp_timeout_ms / 1000.0
        read_timeout = min(open_timeout, self.config.stall_timeout_s)
        self.stats.connects += 1
        started = time.monotonic()
        try:
            container = av.open(
                self._url, options=self._options(), timeout=(open_timeout, read_timeout)
            )
        except av.FFmpegError as exc:
            if self._stopping.is_set():
                return
            if is_refusal(exc):
                raise SourceError(
                    f"camera at {self.display_url} refused RTSP over "
                    f"{self.transport.current.upper()} (461 Unsupported Transport)"
                ) from exc
            if time.monotonic() - started >= open_timeout * 0.9:
                raise SourceTimeoutError(
                    f"no answer from {self.display_url} in time ({open_timeout:g} s)"
                ) from None
            raise SourceError(describe_error(exc, self._url)) from None
        with container:
            if not container.streams.video:
                raise SourceError(f"{self.display_url} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"
            context = stream.codec_context
            # a frame in several slices arrives as several packets: decode it whole, at once
            # when its last macroblock row is in (no waiting for the next frame)
            context.flags2 |= CHUNKS
            self.stats.codec = context.name
            self.stats.transport = self.transport.current
            rate = stream.average_rate or stream.guessed_rate
            self.stats.nominal_fps = float(rate) if rate else self.stats.nominal_fps
            extradata = bytes(context.extradata) if context.extradata else None
            audio = container.streams.audio[0] if container.streams.audio else None
            self.stats.audio = audio_format(audio) if audio is not None else None
            self._audio_known = True
            self._demux(container, stream, extradata, read_timeout, audio)

    def audio_known(self) -> bool:
        return self._audio_known

    def _demux(
        self, container: Any, stream: Any, extradata: bytes | None, read_timeout: float,
        audio: Any = None,
    ) -> None:  # fmt: skip
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        seen_keyframe = False
        held = HeldGroup()
        pending = b""
        last_frame = time.monotonic()
        codec = self.stats.codec
        try:
            for packet in container.demux(*(s for s in (stream, audio) if s is not None)):
                if self._stopping.is_set():
                    return
                if packet.size == 0:
                    continue
                if audio is not None and packet.stream is audio:
                    self._audio_packet(packet, audio)
                    continue
                data = pending + bytes(packet)
                self.stats.packets += 1
                self.stats.keyframes += bool(packet.is_keyframe)
                seen_keyframe = seen_keyframe or bool(packet.is_keyframe)
                if self._unit_listeners:
                    self._forward(bytes(packet), bool(packet.is_keyframe), packet.pts, extradata)
                keyframe = bool(packet.is_keyframe)  # [None]: nobody wants pixels, no decode
                decoded = packet.decode() if self._decode_packet(packet, keyframe, held) else [None]
                if not decoded:
                    pending = data[-1_000_000:]
                    if time.monotonic() - last_frame > self.config.stall_timeout_s:
                        raise self._stall(time.monotonic() - last_frame)
                    continue
                pending = b""
                unit = EncodedUnit(data, codec, bool(packet.is_keyframe), packet.pts, extradata)
                for video in decoded:
                    if not seen_keyframe:
                        continue  # a picture decoded before the first keyframe is garbage
                    last_frame = time.monotonic()
                    if self._streaming_since is None:
                        self._streaming_since = last_frame
                        self.breaker.record_success()
                        self.transport.connected()
                    image, yuv = decoded_pixels(video) if video else (None, None)  # I420 stays
                    pts = (video.pts if video else packet.pts) or 0
                    frame = Frame(
                        image, self._next_seq(), int(pts), time_base, now(),
                        packet=unit, source_codec=codec, yuv=yuv,
                        size=None if video else (stream.width, stream.height),
                    )  # fmt: skip
                    unit = EncodedUnit(b"", codec, False, packet.pts, extradata)
                    self._publish(frame)
        except av.ExitError:
            if self._stopping.is_set():
                return
            if self._streaming_since is not None:
                raise self._stall(read_timeout) from None
            raise SourceTimeoutError(
                f"no video from {self.display_url} over {self.transport.current.upper()} in time"
            ) from None

    def _decode_packet(self, packet: Any, keyframe: bool, held: HeldGroup) -> bool:
        """``_decoding`` plus a warm start: while nothing is decoded, the packets since the
        last keyframe are held, and when pixels are wanted again mid-group they are decoded
        (pictures discarded) so that this packet decodes at once instead of at the next
        keyframe (a camera may send one every 10 s)."""
        held.add(packet, keyframe)  # kept while decoding too: decoding may pause mid-group
        if not self.decode:
            return self._decoding(keyframe)
        if self._resync and not keyframe and len(held.packets) > 1:
            started = time.monotonic()
            for old in held.packets[:-1]:  # this packet is decoded by the caller
                with contextlib.suppress(av.FFmpegError):
                    old.decode()
            self.stats.warm_starts += 1
            log.info("decoder_warm_start", source=self.display_url, packets=len(held.packets),
                     ms=round((time.monotonic() - started) * 1000, 1))  # fmt: skip
            self._resync = False
        return self._decoding(keyframe)

    def _forward(self, data: bytes, keyframe: bool, pts: int | None, extra: bytes | None) -> None:
        unit = EncodedUnit(data, self.stats.codec, keyframe, pts, extra)
        received = now()
        for listener in self._unit_listeners:
            listener(unit, received)

    def _stall(self, silent_s: float) -> SourceError:
        self.stats.stalls += 1
        self.bus.emit(Stalled(self.name, silent_s))
        log.warning("stalled", source=self.display_url, silent_s=round(silent_s, 2))
        return SourceError(f"{self.display_url} sent no frame for {silent_s:.1f} s (stall)")
