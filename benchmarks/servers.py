"""Start streamlab or the aiortc baseline as a server process, for benchmarks."""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamlab.camera.launcher import free_port

BASELINE = Path(__file__).with_name("baseline_server.py")


@contextmanager
def server(
    kind: str,
    source: str,
    *,
    codec: str = "vp8",
    people: bool = False,
    quality: str = "fixed:1280x720",
) -> Iterator[tuple[str, int]]:
    """Yield (WHEP URL, server PID) for ``kind`` = streamlab | baseline."""
    port = free_port()
    if kind == "streamlab":
        command = [
            sys.executable,
            "-m",
            "streamlab.cli",
            "serve",
            "--source",
            source,
            "--name",
            "cam",
            "--codec",
            codec,
            "--port",
            str(port),
            "--quality",
            quality,
        ]  # fixed:1280x720: 640x480 in, 640x480 out, like the baseline
        if people:
            command += ["--analyze", "people", "--skipping", "none"]
    else:
        command = [sys.executable, str(BASELINE), "--source", source, "--port", str(port)]
        if people:
            command.append("--people")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for _ in range(6):
            if process.stdout.readline().startswith("viewer: "):
                break
        else:
            raise RuntimeError(f"{kind} server did not start")
        yield f"http://127.0.0.1:{port}/whep/cam", process.pid
    finally:
        process.terminate()
        process.wait(20)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.5), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
        "mean_ms": round(statistics.fmean(values), 1),
    }
