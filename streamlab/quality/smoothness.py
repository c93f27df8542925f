"""Smoothness of what a viewer rendered, by the standard definitions.

- **freeze** (W3C webrtc-stats ``freezeCount`` / ``totalFreezesDuration``; libwebrtc
  ``video/video_quality_observer2.cc``): an inter-frame time ≥ max(3 x avg, avg + 150 ms),
  where avg is the mean of the last 30 inter-frame times (the current one included, as
  libwebrtc adds it before testing; rounded down to whole ms), once at least 5 are known;
- **pause**: more than 5 s without a frame. A pause is not a freeze and does not enter the
  average (libwebrtc marks the stream paused and skips the freeze test);
- **time between freezes**: the smooth stretches between freezes (and pauses), in ms;
- **harmonic frame rate** = Σd / Σd² over all inter-frame times d in seconds (freezes and
  pauses included), libwebrtc's ``harmonic_framerate``;
- from the frame codes' sequence numbers: **dropped** (seqs between the first and last seen
  that were never shown — counting, when the reference says which seqs the encoders were
  offered, only those), **max skipped** (the most such seqs between two frames shown one
  after the other), **repeated** (a seq shown again); **resolution switches**.

A rung may run below the source's rate by design: then seqs the source made are "dropped"
at the viewer although nothing went wrong; ``source_frames_span`` (seqs from first to last
shown) lets a reader relate the two.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

FREEZE_WINDOW = 30
FREEZE_MIN_SAMPLES = 5
FREEZE_MIN_INCREASE_MS = 150.0
PAUSE_MS = 5000.0
SEQ_MODULUS = 1 << 24  # the frame code carries seq mod 2**24


@dataclass(frozen=True, slots=True)
class Shown:
    """One rendered frame: arrival (ms), its frame code's seq (None if unread), its size."""

    at_ms: float
    seq: int | None
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Smoothness:
    """What ``smoothness`` measured; seq-based figures are None without any code read."""

    frames: int
    freeze_count: int
    freeze_total_ms: float
    time_between_freezes_mean_ms: float | None
    pause_count: int
    pause_total_ms: float
    harmonic_fps: float | None
    resolution_switches: int
    seqs_read: int
    source_frames_span: int | None
    frames_dropped: int | None
    max_skipped: int | None
    frames_repeated: int | None

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain values for JSON (ms and fps rounded to 0.1 / 0.01)."""
        out: dict[str, float | int | None] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, float):
                value = round(value, 2 if name == "harmonic_fps" else 1)
            out[name] = value
        return out


@dataclass
class _Timing:
    freeze_count: int = 0
    freeze_total_ms: float = 0.0
    pause_count: int = 0
    pause_total_ms: float = 0.0
    smooth_ms: list[float] = field(default_factory=list)


def _timing(arrivals: Sequence[float]) -> _Timing:
    """Freezes, pauses and smooth stretches, frame by frame as libwebrtc's observer does."""
    out = _Timing()
    window: deque[float] = deque(maxlen=FREEZE_WINDOW)
    if not arrivals:
        return out
    last_unfreeze = arrivals[0]
    for previous, at in itertools.pairwise(arrivals):
        delay = at - previous
        if delay > PAUSE_MS:
            out.pause_count += 1
            out.pause_total_ms += delay
            if previous > last_unfreeze:
                out.smooth_ms.append(previous - last_unfreeze)
            last_unfreeze = at
            continue
        window.append(delay)
        if len(window) < FREEZE_MIN_SAMPLES:
            continue
        average = float(np.floor(sum(window) / len(window)))
        if delay >= max(3 * average, average + FREEZE_MIN_INCREASE_MS):
            out.freeze_count += 1
            out.freeze_total_ms += delay
            out.smooth_ms.append(previous - last_unfreeze)
            last_unfreeze = at
    if arrivals[-1] > last_unfreeze:
        out.smooth_ms.append(arrivals[-1] - last_unfreeze)
    return out


def harmonic_fps(arrivals: Sequence[float]) -> float | None:
    """Σd / Σd² over inter-frame times d (s) of arrivals in ms; None for < 2 frames."""
    if len(arrivals) < 2:
        return None
    d = np.diff(np.asarray(arrivals, dtype=float)) / 1000.0
    squares = float((d * d).sum())
    return float(d.sum()) / squares if squares > 0 else None


def unwrap(seqs: Iterable[int], modulus: int = SEQ_MODULUS) -> list[int]:
    """Sequence numbers mod ``modulus`` made monotonic across wraps (each relative to the
    one before it: a step of more than half the modulus backwards is a wrap)."""
    out: list[int] = []
    for seq in seqs:
        if not out:
            out.append(seq)
            continue
        step = (seq - out[-1]) % modulus
        if step > modulus // 2:
            step -= modulus
        out.append(out[-1] + step)
    return out


def _near(seq: int, anchor: int, modulus: int = SEQ_MODULUS) -> int:
    """The value congruent to ``seq`` nearest to the unwrapped ``anchor``."""
    step = (seq - anchor) % modulus
    if step > modulus // 2:
        step -= modulus
    return anchor + step


@dataclass(frozen=True, slots=True)
class _SeqFigures:
    span: int | None = None
    dropped: int | None = None
    max_skipped: int | None = None
    repeated: int | None = None


def _seq_figures(seqs: list[int], offered: Iterable[int] | None) -> _SeqFigures:
    if not seqs:
        return _SeqFigures()
    shown = unwrap(seqs)
    distinct = set(shown)
    first, last = min(distinct), max(distinct)
    repeated = len(shown) - len(distinct)
    if offered is None:
        expected = np.arange(first, last + 1)
    else:
        near = {_near(s, first) for s in offered}
        expected = np.array(sorted(s for s in near if first <= s <= last), dtype=np.int64)
    dropped = len(expected) - len(distinct.intersection(expected.tolist()))
    max_skipped = 0
    for before, after in itertools.pairwise(shown):
        if after > before + 1:
            between = np.searchsorted(expected, after) - np.searchsorted(expected, before, "right")
            max_skipped = max(max_skipped, int(between))
    return _SeqFigures(last - first + 1, dropped, max_skipped, repeated)


def smoothness(frames: Sequence[Shown], offered: Iterable[int] | None = None) -> Smoothness:
    """Freezes, pauses, harmonic frame rate, dropped / skipped / repeated frames and
    resolution switches of ``frames`` (in rendering order). ``offered``: the seqs the
    encoders were given (from the reference), to count only those as dropped."""
    arrivals = [f.at_ms for f in frames]
    timing = _timing(arrivals)
    smooth = timing.smooth_ms
    switches = sum(
        1 for a, b in itertools.pairwise(frames) if (a.width, a.height) != (b.width, b.height)
    )
    seqs = [f.seq for f in frames if f.seq is not None]
    figures = _seq_figures(seqs, offered)
    return Smoothness(
        frames=len(frames),
        freeze_count=timing.freeze_count,
        freeze_total_ms=timing.freeze_total_ms,
        time_between_freezes_mean_ms=float(np.mean(smooth)) if smooth else None,
        pause_count=timing.pause_count,
        pause_total_ms=timing.pause_total_ms,
        harmonic_fps=harmonic_fps(arrivals),
        resolution_switches=switches,
        seqs_read=len(seqs),
        source_frames_span=figures.span,
        frames_dropped=figures.dropped,
        max_skipped=figures.max_skipped,
        frames_repeated=figures.repeated,
    )
