"""Reference frames: the pictures the encoders were given, kept on disk by frame-code seq.

The server's pipeline gets a ``ReferenceWriter`` sink: it receives every outgoing frame
(the overlay included when one is drawn: the sink reads the same frame the encoders read),
and a thread of its own reads the frame code and copies the I420 planes into a ring on
disk. A ``ReferenceReader`` in any process opens the same folder read-only and looks frames
up by seq.

Layout of the folder (one ring per frame size, so a source that changes size keeps going):

- ``ring-WxH.frames``: ``slots`` I420 frames of ``W*H*3/2`` bytes, frame ``seq`` in slot
  ``seq % slots``;
- ``ring-WxH.index``: ``slots`` int64, the seq held by each slot (-1: empty or being
  written). The writer marks a slot -1, writes the pixels, then stores the seq; a reader
  checks the seq before and after copying, so a slot overwritten while it copied is
  detected and never returned;
- ``offered.seqs``: int64 seqs of every frame written, in order (8 bytes a frame: what the
  smoothness figures count as offered).

The ring is bounded (``slots`` frames per size); the writer's queue is bounded and counts
what it drops; nothing runs on the event loop but ``offer``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamlab import framecode
from streamlab.frame import Frame

DEFAULT_SLOTS = 120  # 4 s at 30 fps: far more than a viewer lags behind the server
QUEUE_SIZE = 8
OFFERED = "offered.seqs"
EMPTY = -1
RING_NAME = re.compile(r"^ring-(\d+)x(\d+)\.index$")
RESCAN_S = 0.5
MAX_OFFERED = 1 << 22  # seqs kept in offered.seqs: 32 MB, 39 hours at 30 fps


def frame_bytes(width: int, height: int) -> int:
    """Bytes of one I420 frame."""
    return width * height * 3 // 2


class _Ring:
    """One size's slots and index, memory-mapped (read-write for the writer)."""

    def __init__(self, folder: Path, width: int, height: int, slots: int, *, write: bool) -> None:
        self.width, self.height = width, height
        stem = folder / f"ring-{width}x{height}"
        self.frames_path, self.index_path = stem.with_suffix(".frames"), stem.with_suffix(".index")
        shape = (slots, height * 3 // 2, width)
        if write:
            self.frames = np.memmap(self.frames_path, dtype=np.uint8, mode="w+", shape=shape)
            staged = stem.with_suffix(".index.tmp")
            np.full(slots, EMPTY, dtype=np.int64).tofile(staged)
            os.replace(staged, self.index_path)  # readers see the index once it is whole
            self.index = np.memmap(self.index_path, dtype=np.int64, mode="r+", shape=(slots,))
        else:
            self.index = np.memmap(self.index_path, dtype=np.int64, mode="r")
            self.frames = np.memmap(
                self.frames_path, dtype=np.uint8, mode="r", shape=(len(self.index), *shape[1:])
            )
        self.slots = len(self.index)

    def put(self, seq: int, yuv: np.ndarray) -> None:
        slot = seq % self.slots
        self.index[slot] = EMPTY
        self.frames[slot] = yuv
        self.index[slot] = seq

    def holds(self, seq: int) -> int:
        """The seq in ``seq``'s slot now."""
        return int(self.index[seq % self.slots])

    def copy(self, seq: int) -> np.ndarray:
        return np.array(self.frames[seq % self.slots])

    def close(self) -> None:
        for array in (self.frames, self.index):
            mm = getattr(array, "_mmap", None)
            if mm is not None:
                with contextlib.suppress(BufferError, ValueError):
                    mm.close()


@dataclass
class WriterStats:
    """What a ``ReferenceWriter`` did: frames written, dropped (queue full), without a
    readable code (cannot be keyed), without I420 pixels (odd sizes, undecoded)."""

    written: int = 0
    dropped: int = 0
    uncoded: int = 0
    unusable: int = 0


class ReferenceWriter:
    """A pipeline sink that keeps the last ``slots`` outgoing frames per size in ``folder``.

    ``pipeline.add_sink(ReferenceWriter(folder))``; ``close()`` stops its thread.
    """

    needs_pixels = True

    def __init__(
        self, folder: str | Path, *, slots: int = DEFAULT_SLOTS, queue_size: int = QUEUE_SIZE
    ) -> None:
        if slots < 2:
            raise ValueError(f"a reference ring needs at least 2 slots, got {slots}")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.slots = slots
        self.stats = WriterStats()
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=queue_size)
        self._rings: dict[tuple[int, int], _Ring] = {}
        self._offered = (self.folder / OFFERED).open("ab", buffering=0)
        self._offered_count = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="reference-writer", daemon=True)
        self._thread.start()

    def offer(self, frame: Frame) -> None:
        """Queue ``frame`` for the writer thread (never blocks; counts a drop when full)."""
        if self._closed:
            return
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self.stats.dropped += 1

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, stop the thread, release the files (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            while (frame := self._queue.get()) is not None:
                self._write(frame)
        finally:
            self._offered.close()
            for ring in self._rings.values():
                ring.close()

    def _write(self, frame: Frame) -> None:
        try:
            yuv = frame.i420()
        except ValueError:
            self.stats.unusable += 1
            return
        height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
        code = framecode.try_read(yuv[:height]) if width >= framecode.MIN_WIDTH else None
        if code is None:
            self.stats.uncoded += 1
            return
        ring = self._rings.get((width, height))
        if ring is None:
            ring = self._rings[(width, height)] = _Ring(
                self.folder, width, height, self.slots, write=True
            )
        ring.put(code.seq, yuv)
        if self._offered_count < MAX_OFFERED:
            self._offered.write(np.int64(code.seq).tobytes())
            self._offered_count += 1
        self.stats.written += 1


@dataclass
class ReaderStats:
    """Lookups by outcome: found, missing (never written, or not yet), overwritten (the
    reader lagged more than the ring holds, or the slot changed while it copied)."""

    found: int = 0
    missing: int = 0
    overwritten: int = 0


class ReferenceReader:
    """Read-only view of a ``ReferenceWriter``'s folder, from any process.

    ``get(seq)`` returns a copy of that frame's I420 planes, or None; thread-safe.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.stats = ReaderStats()
        self._rings: dict[str, _Ring] = {}
        self._scanned = 0.0
        self._lock = threading.Lock()
        self._scan()

    def _scan(self) -> None:
        self._scanned = time.monotonic()
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        rings = dict(self._rings)  # replaced whole: lookups in other threads iterate it
        for name in names:
            match = RING_NAME.match(name)
            if match is None or name in rings:
                continue
            width, height = int(match.group(1)), int(match.group(2))
            with contextlib.suppress(OSError, ValueError):
                rings[name] = _Ring(self.folder, width, height, 0, write=False)
        self._rings = rings

    def get(self, seq: int) -> np.ndarray | None:
        """The reference I420 planes for frame-code ``seq`` (a copy), or None."""
        result = self._lookup(seq)
        stale = not self._rings or time.monotonic() - self._scanned > RESCAN_S
        if result is None and stale:
            with self._lock:
                self._scan()
            result = self._lookup(seq)
        return result

    def _lookup(self, seq: int) -> np.ndarray | None:
        newer = False
        for ring in self._rings.values():
            held = ring.holds(seq)
            if held != seq:
                newer = newer or _is_newer(held, seq)
                continue
            pixels = self._copy(ring, seq)
            if ring.holds(seq) == seq:
                self.stats.found += 1
                return pixels
            newer = True
        if newer:
            self.stats.overwritten += 1
        else:
            self.stats.missing += 1
        return None

    def _copy(self, ring: _Ring, seq: int) -> np.ndarray:
        return ring.copy(seq)

    def offered(self) -> np.ndarray:
        """Every seq written so far, in order (int64)."""
        path = self.folder / OFFERED
        try:
            data = path.read_bytes()
        except OSError:
            return np.empty(0, dtype=np.int64)
        whole = len(data) // 8 * 8  # a write may be under way
        return np.frombuffer(data[:whole], dtype=np.int64).copy()

    def close(self) -> None:
        rings, self._rings = self._rings, {}
        for ring in rings.values():
            ring.close()

    def __enter__(self) -> ReferenceReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _is_newer(held: int, seq: int) -> bool:
    """Whether a slot holding ``held`` (or being written: -1) has moved past ``seq``."""
    if held == EMPTY:
        return False
    modulus = 1 << framecode.SEQ_BITS
    step = (held - seq) % modulus
    return 0 < step < modulus // 2
