"""Let ``stop()`` end a hanging PyAV open or read within a fraction of a second.

PyAV installs an FFmpeg interrupt callback when ``av.open`` gets a timeout; FFmpeg calls it
about every 100 ms while it waits on a socket, and it aborts the operation once
``time.monotonic()`` (as seen by ``av.container.core``) passes the operation's deadline.
``install()`` gives that module a clock that runs far ahead in a thread whose stop flag is
set (``watch(flag)`` binds the flag to the calling thread), so a stop takes the same path
as a timeout: the blocked call returns ``av.ExitError`` at its next poll.
"""

from __future__ import annotations

import importlib
import threading
import time
from types import ModuleType
from typing import Any

_JUMP_S = 1e9
_local = threading.local()
_lock = threading.Lock()


class _StoppableClock:
    """The ``time`` module, except ``monotonic()`` jumps ahead once this thread must stop."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def monotonic() -> float:
        flag: threading.Event | None = getattr(_local, "flag", None)
        current = time.monotonic()
        return current + _JUMP_S if flag is not None and flag.is_set() else current


def install() -> bool:
    """Hook PyAV's interrupt clock (idempotent); False when this PyAV has no such hook."""
    try:
        core = importlib.import_module("av.container.core")
    except ImportError:
        return False
    with _lock:
        current = getattr(core, "time", None)
        if isinstance(current, _StoppableClock):
            return True
        if not isinstance(current, ModuleType) or not hasattr(current, "monotonic"):
            return False
        core.time = _StoppableClock()  # type: ignore[attr-defined]
    return True


def watch(flag: threading.Event) -> None:
    """PyAV I/O in the calling thread is interrupted as soon as ``flag`` is set."""
    _local.flag = flag
