"""Clock helpers: one wall clock for capture times, shared with other processes and browsers."""

from __future__ import annotations

import time


def now() -> float:
    """Wall-clock time in seconds (``time.time()``); comparable across processes on one host."""
    return time.time()


def now_ms() -> int:
    """Wall-clock time in whole milliseconds, the unit of the frame code and of ``Date.now()``."""
    return time.time_ns() // 1_000_000
