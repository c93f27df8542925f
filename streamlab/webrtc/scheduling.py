"""Keep an encoder library from making this process's threads real-time.

SVT-AV1 (the ``libsvtav1`` encoder), run as root, turns the thread that opens it and the
threads it starts into ``SCHED_FIFO`` priority 99. A thread that then spins (an encoder
under load) starves everything else on the machine, kernel work included, and every process
that thread starts inherits the policy (seen: a Chromium started afterwards spun at real-time
priority in the kernel until killed). ``TimeSharing`` notes the policy of each thread before
such a call and puts back to ``SCHED_OTHER`` every thread the call made real-time.
"""

from __future__ import annotations

import contextlib
import os
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


@contextlib.contextmanager
def time_sharing() -> Iterator[list[int]]:
    """Threads made real-time inside the block go back to ``SCHED_OTHER`` when it ends; the
    yielded list then holds their ids (a thread that was real-time before is left alone)."""
    before = thread_policies()
    undone: list[int] = []
    try:
        yield undone
    finally:
        for tid, policy in thread_policies().items():
            if policy in REAL_TIME and before.get(tid) not in REAL_TIME:
                with contextlib.suppress(OSError):
                    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                    undone.append(tid)
