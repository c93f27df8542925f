"""Give freed heap back to the OS after viewers leave (glibc only; elsewhere a no-op).

A peer connection's C state (DTLS, SRTP, codecs' buffers) is freed into glibc's heap, which
keeps it: after hundreds of viewers come and go the server's RSS stays at its peak.
``malloc_trim(0)`` returns the free pages; it is cheap but not free, so ``HeapTrimmer``
runs it at most once per ``min_interval_s``, shortly after the last of a burst of closes.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from typing import Any

_libc: Any = None


def _trim() -> bool:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    if not _libc or not hasattr(_libc, "malloc_trim"):
        return False
    return bool(_libc.malloc_trim(0))


class HeapTrimmer:
    """``closed()`` after a session ends; the trim follows ``delay_s`` after the last one."""

    def __init__(self, delay_s: float = 1.0, min_interval_s: float = 10.0) -> None:
        self.delay_s = delay_s
        self.min_interval_s = min_interval_s
        self.trims = 0
        self._handle: asyncio.TimerHandle | None = None
        self._last = float("-inf")

    def closed(self) -> None:
        loop = asyncio.get_running_loop()
        if self._handle is not None:
            self._handle.cancel()
        wait = max(self.delay_s, self._last + self.min_interval_s - loop.time())
        self._handle = loop.call_later(wait, self._run)

    def _run(self) -> None:
        self._handle = None
        self._last = asyncio.get_running_loop().time()
        if _trim():
            self.trims += 1

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
