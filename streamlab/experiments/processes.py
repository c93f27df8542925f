"""Child processes of a run: start, wait for their ready line, stop — never leaked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from streamlab.errors import ConfigError
from streamlab.experiments.scenario import CameraSpec


class Child:
    """A subprocess whose stdout lines are read by a thread; ``ready`` waits for a prefix."""

    def __init__(self, command: list[str], *, what: str) -> None:
        self.command = command
        self.what = what
        self.lines: deque[str] = deque(maxlen=200)
        self.errors: deque[str] = deque(maxlen=20)
        self.on_line: Callable[[str], None] | None = None
        self._seen = threading.Condition()
        self._closed = False
        env = dict(os.environ, STREAMING_LOG_LEVEL="error", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._pump, args=(self.process.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, False), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _pump(self, stream: object, out: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            text = line.rstrip()
            if not out:
                self.errors.append(text)
                continue
            with self._seen:
                self.lines.append(text)
                self._seen.notify_all()
            if self.on_line is not None:
                self.on_line(text)
        if out:
            with self._seen:
                self._closed = True
                self._seen.notify_all()

    def ready(self, prefix: str, within_s: float = 30.0) -> str:
        """The rest of the first stdout line starting with ``prefix``; ConfigError if none."""

        def found() -> str | None:
            for line in self.lines:
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
            return None

        with self._seen:
            self._seen.wait_for(lambda: found() is not None or self._closed, within_s)
            value = found()
        if value is None:
            self.stop()
            time.sleep(0.1)  # let the stderr reader catch the last line
            detail = " | ".join(list(self.errors)[-3:]) or "no output"
            raise ConfigError(f"{self.what} did not start: {detail}")
        return value

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


HOSTS = [sys.executable, "-m", "streamlab.experiments.hosts"]


class CameraPool:
    """One test camera process per ``camera:`` spec, shared by a run's scenarios."""

    def __init__(self) -> None:
        self._cameras: dict[str, tuple[Child, str]] = {}

    def url(self, source: str) -> str:
        """The RTSP URL for ``source`` (a camera spec starts its camera once), else ``source``."""
        if not source.startswith("camera:"):
            return source
        spec = CameraSpec.parse(source)
        known = self._cameras.get(spec.key)
        if known is None or known[0].process.poll() is not None:
            size, options = f"{spec.width}x{spec.height}", json.dumps(dict(spec.options))
            command = [*HOSTS, "camera", "--size", size, "--fps", str(spec.fps),
                       "--options", options]  # fmt: skip
            child = Child(command, what=f"test camera {spec.key}")
            self._cameras[spec.key] = (child, child.ready("camera:", 40.0))
        return self._cameras[spec.key][1]

    def close(self) -> None:
        for child, _ in self._cameras.values():
            child.stop()
        self._cameras.clear()

    def __enter__(self) -> CameraPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
