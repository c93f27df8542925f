"""Run async code inside a network namespace, in-process.

A network namespace belongs to a thread, not a process: ``in_namespace(ns, main)`` starts a
thread, moves it into ``ns`` (``setns``), runs ``asyncio.run(main())`` there and returns its
result (or raises its error). Every socket made there (aiortc's ICE, aiohttp) lives in
``ns``; the rest of the process is untouched. Needs root.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def enter(ns: str) -> None:
    """Move the calling thread into network namespace ``ns`` (``ip netns add`` made it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {ns}: {os.strerror(error)}")
    finally:
        os.close(fd)


def in_namespace(ns: str, main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(main())`` in a thread inside ``ns``; its result, or its error."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            enter(ns)
            outcome["result"] = asyncio.run(_call(main))
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"netns:{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


async def _call(main: Callable[[], Awaitable[T]]) -> T:
    return await main()
