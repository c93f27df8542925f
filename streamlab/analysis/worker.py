"""Analysis in a worker process, fed through shared memory (``analysis_isolation="process"``).

The parent copies each submitted frame's I420 planes into one slot of a ring in
``multiprocessing.shared_memory`` and sends ``(slot, seq, ...)`` over a pipe; the worker
copies the slot out, checks the slot's sequence number again after copying (a lagging
reader whose slot was overwritten drops that frame instead of analysing a torn image),
runs the detectors and answers over the pipe. In flight is bounded by the engine, so the
ring never needs more than ``in_flight + 1`` slots and nothing queues: latest wins.

Pitfalls handled (as Frigate met them): the worker detaches its mapping from the resource
tracker (CPython gh-82300 — otherwise the tracker unlinks or warns when a process exits);
numpy views on the buffer are dropped before ``close()`` (else BufferError); the ring's
size is checked against free space in /dev/shm first (a full /dev/shm is a SIGBUS later).
A worker that dies or hangs is killed and restarted on the next frame, and counted; the
video never waits for it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import structlog

from streamlab.detection import Detection
from streamlab.errors import ConfigError

log = structlog.get_logger("streamlab.analysis.worker")

HEADER = 16  # per slot: int64 sequence number (written last), int64 pixel bytes
STARTUP_S = 60.0  # a spawned worker imports numpy, OpenCV and streamlab first
REPLY_S = 10.0  # a detector stuck longer than this gets its worker restarted
MIN_RESTART_GAP_S = 1.0
WORKER_NICENESS = 10
SHM_DIR = "/dev/shm"
ENTRY = (
    "import sys; from multiprocessing.connection import Connection; "
    "from streamlab.analysis.worker import worker_main; "
    "worker_main(Connection(int(sys.argv[1])), sys.argv[2], int(sys.argv[3]))"
)


class WorkerFailed(RuntimeError):
    """The worker died, hung or could not analyse a frame (it is restarted on demand)."""


@dataclass(frozen=True, slots=True)
class Request:
    slot: int
    seq: int
    width: int
    height: int
    names: tuple[str, ...]
    max_width: int
    hide_code: bool
    user: dict[str, Any]


class SlotRing:
    """``slots`` fixed-size slots of I420 bytes in one shared-memory segment (parent side)."""

    def __init__(self, slots: int, slot_bytes: int) -> None:
        need = slots * (HEADER + slot_bytes)
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(SHM_DIR).free
            if need > free // 2:
                raise ConfigError(
                    f"/dev/shm has {free // 2**20} MiB free, the analysis ring needs "
                    f"{need // 2**20} MiB: enlarge /dev/shm or use analysis_isolation='thread'"
                )
        self.slots, self.slot_bytes = slots, slot_bytes
        self.shm = shared_memory.SharedMemory(create=True, size=need)
        self._next = 0

    @property
    def name(self) -> str:
        return self.shm.name

    def write(self, seq: int, planes: np.ndarray) -> int:
        """Copy ``planes`` into the next slot, stamped with ``seq``; returns the slot."""
        slot = self._next
        self._next = (slot + 1) % self.slots
        base = slot * (HEADER + self.slot_bytes)
        buf = self.shm.buf
        assert buf is not None
        struct.pack_into("<qq", buf, base, -1, planes.nbytes)  # being written
        view = np.ndarray((planes.nbytes,), np.uint8, buf, base + HEADER)
        view[:] = planes.reshape(-1)
        del view
        struct.pack_into("<q", buf, base, seq)
        return slot

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.shm.close()
        with contextlib.suppress(FileNotFoundError):
            self.shm.unlink()


class AnalysisWorker:
    """One worker process for one stream's analysis, restarted when it dies or hangs."""

    def __init__(self, stream: str, *, slots: int) -> None:
        self.stream = stream
        self.slots = slots
        self.restarts = 0
        self.failures = 0
        self.started = 0
        self._ring: SlotRing | None = None
        self._process: Any = None
        self._conn: Connection | None = None
        self._sent_user: set[str] = set()
        self._lock = threading.Lock()  # one round trip at a time on the pipe
        self._last_start = 0.0
        self._fresh = False

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.pid

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def analyse(
        self, planes: np.ndarray, seq: int, names: tuple[str, ...], *, max_width: int,
        hide_code: bool, user: dict[str, Any],
    ) -> tuple[list[Detection], dict[str, float]]:  # fmt: skip
        """Blocking round trip (call it from a thread, never from the event loop)."""
        for name, detector in user.items():
            if getattr(detector.fn, "__module__", "__main__") == "__main__":
                raise WorkerFailed(
                    f"detector {name!r} cannot run in the analysis worker process: define its "
                    "function in an importable module (not __main__ or a notebook), or use "
                    "analysis_isolation='thread'"
                )
        with self._lock:
            self._ensure(planes.nbytes)
            assert self._ring is not None and self._conn is not None
            slot = self._ring.write(seq, planes)
            fresh_user = {k: v for k, v in user.items() if k not in self._sent_user}
            height = planes.shape[0] * 2 // 3
            request = Request(slot, seq, planes.shape[1], height, names, max_width, hide_code,
                              fresh_user)  # fmt: skip
            try:
                self._conn.send(request)
                self._sent_user |= set(fresh_user)
                wait = STARTUP_S if self._fresh else REPLY_S
                if not self._conn.poll(wait):
                    raise WorkerFailed(f"analysis worker gave no answer in {wait:g} s")
                reply = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError, WorkerFailed) as exc:
                self.failures += 1
                self._kill()
                raise WorkerFailed(f"analysis worker failed: {exc or type(exc).__name__}") from None
            self._fresh = False
            if reply[0] == "error":
                self.failures += 1
                raise WorkerFailed(reply[1])
            _, found, timings = reply
            return [Detection(*d) for d in found], timings

    def _ensure(self, nbytes: int) -> None:
        resized = False
        if self._ring is None or self._ring.slot_bytes != nbytes:  # new frame size: new ring
            resized = self._process is not None
            self._kill()
            if self._ring is not None:
                self._ring.close()
            self._ring = SlotRing(self.slots, nbytes)
        if self.alive:
            return
        self._kill()
        if self.started and not resized:
            if time.monotonic() - self._last_start < MIN_RESTART_GAP_S:
                raise WorkerFailed("analysis worker restarting too often; frame not analysed")
            self.restarts += 1
            log.warning("analysis_worker_restarted", stream=self.stream, restarts=self.restarts)
        # A plain child process (not multiprocessing's spawn): it never re-imports the
        # user's __main__ (scripts without a main guard, notebooks) and shares nothing.
        parent, child = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", ENTRY, str(child.fileno()), self._ring.name,
                 str(self._ring.slot_bytes)],
                pass_fds=[child.fileno()], env=env, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            child.close()
        self._conn = Connection(parent.detach())
        self._sent_user = set()
        self._last_start = time.monotonic()
        self._fresh = True
        self.started += 1

    def _kill(self) -> None:
        process, self._process = self._process, None
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        if process is not None:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    def close(self) -> None:
        """Stop the worker and free the ring. Idempotent; blocking (call from a thread)."""
        with self._lock:
            conn, process = self._conn, self._process
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.send(None)
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(2)
            self._kill()
            if self._ring is not None:
                self._ring.close()
                self._ring = None


# -- the worker process ----------------------------------------------------------------


def worker_main(conn: Connection, shm_name: str, slot_bytes: int) -> None:
    """Entry point of the worker process: answer requests until told to stop (``None``)."""
    import cv2

    from streamlab.analysis.detectors import DetectorPool, register_detector
    from streamlab.analysis.inputs import analyse
    from streamlab.frame import Frame

    cv2.setNumThreads(1)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    shm = _attach_untracked(shm_name)
    buf = shm.buf
    assert buf is not None
    pool = DetectorPool(1)
    try:
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return
            try:
                request = pickle.loads(data)
            except Exception as exc:  # e.g. a user detector the worker cannot import
                conn.send(("error", f"cannot load the request: {type(exc).__name__}: {exc}"))
                continue
            if request is None:
                return
            for name, user in request.user.items():
                register_detector(name, user.fn, gray=user.gray)
            base = request.slot * (HEADER + slot_bytes)
            expected = request.seq
            planes = np.empty((request.height * 3 // 2, request.width), np.uint8)
            view = np.ndarray((planes.nbytes,), np.uint8, buf, base + HEADER)
            planes.reshape(-1)[:] = view
            del view
            (after,) = struct.unpack_from("<q", buf, base)
            if after != expected:  # overwritten while we copied: never analyse a torn frame
                conn.send(("error", f"slot {request.slot} overwritten (seq {after})"))
                continue
            frame = Frame.from_i420(planes, request.seq, 0, Fraction(1, 90000), 0.0)
            try:
                found, timings = analyse(pool, frame, request.names,
                                         max_width=request.max_width,
                                         hide_code=request.hide_code)  # fmt: skip
            except Exception as exc:  # a detector's bug is an answer, not a dead worker
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
                continue
            rows = [(d.label, d.x, d.y, d.w, d.h, d.score) for d in found]
            conn.send(("ok", rows, timings))
    finally:
        del buf  # no view may outlive close() (BufferError)
        with contextlib.suppress(Exception):
            shm.close()


def _attach_untracked(name: str) -> shared_memory.SharedMemory:
    """Attach to the parent's segment without registering it with a resource tracker
    (CPython gh-82300: attaching registers too, and a tracker then unlinks or warns about
    a segment it does not own). Only the parent, which created it, unlinks it."""
    from multiprocessing import resource_tracker

    register = resource_tracker.register
    resource_tracker.register = lambda *args, **kwargs: None
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register
