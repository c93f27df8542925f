"""Conditions a scenario creates around the server: background CPU load.

``cpu_load = N`` starts N busy worker *processes* (not threads inside the server, which
would only measure the GIL): each spins in pure Python until stopped. They are plain
subprocesses, so they also work inside Dask's daemonic worker processes.
"""

from __future__ import annotations

import subprocess
import sys
from types import TracebackType

BUSY = """
import signal, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
x = 0
while True:
    x = (x * 31 + 7) % 1000003
"""


class CpuLoad:
    """``with CpuLoad(2):`` — two processes each keeping one core busy."""

    def __init__(self, processes: int) -> None:
        self.processes = max(0, int(processes))
        self._children: list[subprocess.Popen[bytes]] = []

    def start(self) -> CpuLoad:
        for _ in range(self.processes - len(self._children)):
            self._children.append(
                subprocess.Popen([sys.executable, "-c", BUSY], stdin=subprocess.DEVNULL)
            )
        return self

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self._children if c.poll() is None]

    def stop(self) -> None:
        for child in self._children:
            if child.poll() is None:
                child.terminate()
        for child in self._children:
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        self._children.clear()

    def __enter__(self) -> CpuLoad:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
