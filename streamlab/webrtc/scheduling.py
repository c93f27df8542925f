"""Keep an encoder library from making this process's threads real-time.

SVT-AV1 (the ``libsvtav1`` encoder), run as root, turns the thread that opens it and the
threads it starts into ``SCHED_FIFO`` priority 99. A thread that then spins (an encoder
under load) starves everything else on the machine, kernel work included, and every process
that thread starts inherits the policy (seen: a Chromium started afterwards spun at real-time
priority in the kernel until killed). ``time_sharing`` notes the policy of each thread before
such a call and puts back to ``SCHED_OTHER`` every thread the call made real-time; for the
calling thread through ``pthread_setschedparam``, so that the C library's own record of its
policy (which libraries such as libzmq read back and apply to the threads they start) is
time-sharing again too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator

REAL_TIME = {getattr(os, "SCHED_FIFO", -1), getattr(os, "SCHED_RR", -1)}


def thread_policies() -> dict[int, int]:
    """Scheduling policy of each thread of this process (Linux; empty elsewhere)."""
    policies: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError, ValueError):
                policies[int(name)] = os.sched_getscheduler(int(name))
    return policies


def _pthread() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.pthread_self.restype = ctypes.c_ulong
        libc.pthread_getschedparam.argtypes = [ctypes.c_ulong, ctypes.POINTER(ctypes.c_int),
                                               ctypes.POINTER(ctypes.c_int)]  # fmt: skip
        libc.pthread_setschedparam.argtypes = [ctypes.c_ulong, ctypes.c_int,
                                               ctypes.POINTER(ctypes.c_int)]  # fmt: skip
    except (OSError, AttributeError):
        return None
    return libc


def recorded_policy() -> int | None:
    """The calling thread's policy as the C library records it (``pthread_getschedparam``),
    which a syscall that changes the policy does not update; None where unknown."""
    libc = _pthread()
    if libc is None:
        return None
    policy, priority = ctypes.c_int(), ctypes.c_int()
    if libc.pthread_getschedparam(libc.pthread_self(), ctypes.byref(policy),
                                  ctypes.byref(priority)) != 0:  # fmt: skip
        return None
    return policy.value


def _time_share_calling_thread() -> bool:
    libc = _pthread()
    if libc is None:
        return False
    priority = ctypes.c_int(0)
    return libc.pthread_setschedparam(libc.pthread_self(), os.SCHED_OTHER,
                                      ctypes.byref(priority)) == 0  # fmt: skip


@contextlib.contextmanager
def time_sharing() -> Iterator[list[int]]:
    """Threads made real-time inside the block go back to ``SCHED_OTHER`` when it ends; the
    yielded list then holds their ids (a thread that was real-time before is left alone)."""
    before = thread_policies()
    recorded = recorded_policy()
    undone: list[int] = []
    try:
        yield undone
    finally:
        me = threading.get_native_id()
        if (recorded not in REAL_TIME and recorded_policy() in REAL_TIME
                and _time_share_calling_thread()):  # fmt: skip
            undone.append(me)
        for tid, policy in thread_policies().items():
            if policy in REAL_TIME and before.get(tid) not in REAL_TIME:
                with contextlib.suppress(OSError):
                    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                    if tid not in undone:
                        undone.append(tid)
