"""Network conditions: an emulated link on a viewer's send path, in-process, no root needed.

A spec such as ``rate=800k,delay=40ms,jitter=5ms,loss=1%,queue=200ms`` describes a
drop-tail bottleneck: packets are serialised at ``rate``, wait at most ``queue`` for the
link (later ones are dropped), then travel ``delay`` ± ``jitter`` (never reordered), and
``loss`` drops packets at random. ``attach_link(pc, spec)`` puts such a link in front of
any aiortc peer connection's RTP/RTCP send path, so baselines can sit behind the same one.

The rate may follow a schedule, ``rate=1M@0s,2.5M@40s,600k@60s,1M@80s`` (RFC 8867's
variable-capacity case): each step applies from its time on, counted from when the link got
the spec (a viewer's link: when it connected, or when the setting changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from streamlab.clock import now
from streamlab.errors import ConfigError

_UNITS_BPS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
_KEYS = ("rate", "delay", "jitter", "loss", "queue")
MAX_PACKETS = 10_000
DEFAULT_QUEUE_S = 0.2


def parse_rate(text: str) -> int:
    """Bits per second from ``800k``, ``2.5M``, ``300000`` (10k..10G); ConfigError otherwise."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)(?:bit|bps|b)?(?:/s)?", text.lower())
    if not match:
        raise ConfigError(f"network rate {text!r}: use bits per second like 800k, 2M, 300000")
    value = float(match.group(1)) * _UNITS_BPS[match.group(2)]
    if not 10_000 <= value <= 10_000_000_000:
        raise ConfigError(f"network rate {text!r} must be between 10k and 10G")
    return int(value)


def _seconds(name: str, text: str, high_s: float) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s)?", text.lower())
    if not match:
        raise ConfigError(f"network {name} {text!r}: use a duration like 40ms or 0.04s")
    value = float(match.group(1)) / (1000 if match.group(2) in (None, "ms") else 1)
    if value > high_s:
        raise ConfigError(f"network {name} {text!r} must be at most {high_s * 1000:g}ms")
    return value


def _fraction(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%?)", text)
    if not match:
        raise ConfigError(f"network loss {text!r}: use a percentage like 1% or a fraction 0.01")
    value = float(match.group(1)) / (100 if match.group(2) else 1)
    if value > 1:
        raise ConfigError(f"network loss {text!r} must be between 0% and 100%")
    return value


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """A link's conditions; the empty spec is an unconstrained link."""

    rate_bps: int | None = None
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    queue_s: float = DEFAULT_QUEUE_S

    schedule: tuple[tuple[float, int], ...] = ()
    """``(at_s, rate_bps)`` steps after the first (``rate_bps`` holds from 0 s)."""

    @classmethod
    def parse(cls, text: str | None) -> NetworkSpec:
        """``rate=800k,delay=40ms,jitter=5ms,loss=1%,queue=200ms`` (any subset; "" = none);
        the rate may be a schedule: ``rate=1M@0s,2.5M@40s,600k@60s``."""
        values: dict[str, Any] = {}
        steps: list[tuple[float, int]] = []
        for part in (text or "").replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part and "@" in part and "rate" in values:
                steps.append(_step(part))
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or key not in _KEYS:
                raise ConfigError(
                    f"network setting {part!r}: expected key=value with key one of "
                    + ", ".join(_KEYS)
                )
            if key in values:
                raise ConfigError(f"network setting {key!r} given twice")
            values[key] = value
        if "rate" in values and "@" in values["rate"]:
            first = _step(values["rate"])
            if first[0] != 0:
                raise ConfigError(f"a rate schedule starts at 0s, got {values['rate']!r}")
            values["rate"] = str(first[1])
            if [at for at, _ in steps] != sorted({at for at, _ in steps}) or any(
                at <= 0 for at, _ in steps
            ):
                raise ConfigError("rate schedule steps must come at increasing times after 0s")
        return cls(
            schedule=tuple(steps),
            rate_bps=parse_rate(values["rate"]) if "rate" in values else None,
            delay_s=_seconds("delay", values["delay"], 5.0) if "delay" in values else 0.0,
            jitter_s=_seconds("jitter", values["jitter"], 1.0) if "jitter" in values else 0.0,
            loss=_fraction(values["loss"]) if "loss" in values else 0.0,
            queue_s=_seconds("queue", values["queue"], 10.0) if "queue" in values else 0.2,
        )

    @property
    def empty(self) -> bool:
        return self.rate_bps is None and not (self.delay_s or self.jitter_s or self.loss)

    def rate_at(self, elapsed_s: float) -> int | None:
        """The rate ``elapsed_s`` seconds after the spec took effect."""
        rate = self.rate_bps
        for at_s, step in self.schedule:
            if elapsed_s < at_s:
                break
            rate = step
        return rate

    def __str__(self) -> str:
        parts = []
        if self.rate_bps is not None:
            rate = _format_rate(self.rate_bps)
            if self.schedule:
                rate += "@0s," + ",".join(f"{_format_rate(r)}@{at:g}s" for at, r in self.schedule)
            parts.append(f"rate={rate}")
        if self.delay_s:
            parts.append(f"delay={self.delay_s * 1000:g}ms")
        if self.jitter_s:
            parts.append(f"jitter={self.jitter_s * 1000:g}ms")
        if self.loss:
            parts.append(f"loss={self.loss * 100:g}%")
        if self.rate_bps is not None and self.queue_s != DEFAULT_QUEUE_S:
            parts.append(f"queue={self.queue_s * 1000:g}ms")
        return ",".join(parts)


def _step(text: str) -> tuple[float, int]:
    rate, _, at = text.partition("@")
    at = at.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", at):
        at += "s"  # a schedule counts in seconds
    return _seconds("schedule time", at, 86_400.0), parse_rate(rate.strip())


def _format_rate(bps: int) -> str:
    for unit, scale in (("G", 1_000_000_000), ("M", 1_000_000), ("k", 1_000)):
        if bps % scale == 0:
            return f"{bps // scale}{unit}"
    return str(bps)


@dataclass(slots=True)
class LinkStats:
    """What went through a link so far."""

    packets: int = 0
    bytes: int = 0
    delivered: int = 0
    dropped_queue: int = 0
    dropped_loss: int = 0
    max_queue_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "delivered": self.delivered,
            "dropped_queue": self.dropped_queue,
            "dropped_loss": self.dropped_loss,
            "max_queue_ms": round(self.max_queue_s * 1000, 1),
        }


Send = Callable[[bytes], Awaitable[None]]


class EmulatedLink:
    """A bottleneck in front of ``send``; ``await link.send(data)`` never waits for the link.

    One task releases packets in order at their due time; everything is bounded (the queue
    by ``queue_s`` at ``rate_bps``, and by ``MAX_PACKETS`` in any case).
    """

    def __init__(self, send: Send, spec: NetworkSpec | None = None, *, seed: int | None = None):
        self._forward = send
        self.spec = spec or NetworkSpec()
        self.stats = LinkStats()
        self._random = random.Random(seed)
        self._busy_until = 0.0
        self._last_due = 0.0
        # bounded in accept(): at most MAX_PACKETS (and queue_s of rate); beyond, the newest
        # packet is dropped (counted in stats.dropped_queue), as a drop-tail link does
        self._due: deque[tuple[float, bytes]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.observer: Callable[[bytes], None] | None = None
        self._dtls: Any = None  # the transport this link sits on (``attach_link``)
        self._since = now()  # when the spec took effect (its rate schedule counts from here)

    def update(self, spec: NetworkSpec) -> None:
        """New conditions, from the next packet on (packets on the wire keep their times);
        a rate schedule starts over."""
        self.spec = spec
        self._since = now()

    async def send(self, data: bytes) -> None:
        """Take one packet (RTP or RTCP) as the link's sender would hand it to the wire."""
        if self.observer is not None:
            self.observer(data)
        spec = self.spec
        if spec.empty and not self._due:
            await self._forward(data)
            return
        self.accept(data, now())

    def accept(self, data: bytes, at: float) -> bool:
        """Queue ``data`` arriving at ``at``; False when the link dropped it."""
        spec = self.spec
        stats = self.stats
        stats.packets += 1
        stats.bytes += len(data)
        if self._closed:
            return False
        if spec.loss and self._random.random() < spec.loss:
            stats.dropped_loss += 1
            return False
        leaves = at
        rate_bps = spec.rate_at(at - self._since) if spec.schedule else spec.rate_bps
        if rate_bps is not None:
            start = max(at, self._busy_until)
            waited = start - at
            if waited > spec.queue_s or len(self._due) >= MAX_PACKETS:
                stats.dropped_queue += 1
                return False
            stats.max_queue_s = max(stats.max_queue_s, waited)
            leaves = start + len(data) * 8 / rate_bps
            self._busy_until = leaves
        elif len(self._due) >= MAX_PACKETS:
            stats.dropped_queue += 1
            return False
        jitter = self._random.uniform(-spec.jitter_s, spec.jitter_s) if spec.jitter_s else 0.0
        due = max(leaves + spec.delay_s + jitter, self._last_due)
        self._last_due = due
        self._due.append((due, data))
        self._ensure_task()
        self._wake.set()
        return True

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._release())

    async def _release(self) -> None:
        while not self._closed:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            due, data = self._due[0]
            wait = due - now()
            if wait > 0.0005:
                await asyncio.sleep(wait)
                continue
            self._due.popleft()
            self.stats.delivered += 1
            with contextlib.suppress(ConnectionError):
                await self._forward(data)

    def close(self) -> None:
        """Drop what is queued, stop the release task and take the link off its transport
        (the transport and the link point at each other until then)."""
        self._closed = True
        self._due.clear()
        self.observer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._dtls is not None:
            self._dtls.__dict__.pop("_send_rtp", None)  # back to the transport's own method
            self._dtls.__dict__.pop("_streamlab_link", None)
            self._dtls = None


def attach_link(pc: Any, spec: NetworkSpec | str | None = None) -> EmulatedLink:
    """Put an emulated link on the RTP/RTCP send path of an aiortc ``RTCPeerConnection``.

    Call after the local description is set (the transports exist then). The link takes
    everything the peer's senders put on the wire; data channels are not affected.
    """
    spec = NetworkSpec.parse(spec) if isinstance(spec, str | None) else spec
    dtls = next(
        (
            t.sender.transport
            for t in pc.getTransceivers()
            if t.sender is not None and t.sender.transport is not None
        ),
        None,
    )
    if dtls is None:
        raise ConfigError("the peer connection has no send transport yet")
    existing = getattr(dtls, "_streamlab_link", None)
    if isinstance(existing, EmulatedLink):
        existing.update(spec)
        return existing
    link = EmulatedLink(dtls._send_rtp, spec)
    dtls._send_rtp = link.send
    dtls._streamlab_link = link
    link._dtls = dtls
    return link
