"""streamlab's CPU with N viewers through Janus against N viewers connected directly.

Each round runs ``streamlab serve`` (a synthetic 640x360@30 stream, VP8 at the top rung)
in one network namespace — with ``--forward`` to a private Debian Janus beside it in the
Janus rounds — and N aiortc viewers in another (one thread, one event loop), waits until
every viewer decodes, then measures over a window: streamlab's CPU (its process's user +
system time, as a share of one core), Janus's CPU, and the frames each viewer decoded per
second. Needs root and Debian's janus::

    flock /tmp/streamlab-heavy.lock .venv/bin/python benchmarks/janus_probe.py \
        --viewers 1,10 --seconds 10 --out reports/janus.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from streamlab.experiments.bottleneck import KernelBottleneck, available
from streamlab.experiments.netns import in_namespace
from streamlab.experiments.processes import Child
from streamlab.forward.janus_viewer import JanusViewer
from streamlab.forward.local import LocalJanus
from streamlab.forward.local import available as janus_available
from streamlab.webrtc.client import WhepClient

STREAMLAB = str(Path(sys.executable).with_name("streamlab"))
SOURCE = "synthetic://?size=640x360&fps=30&objects=2"
MOUNTPOINT = 500
WARMUP_S = 3.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def serve(net: KernelBottleneck, forward: str | None, viewers: int) -> Child:
    env = ["env", "STREAMING_ALLOW_PUBLIC_BIND=true",
           f"STREAMING_ICE_ALLOWED_NETWORKS=[\"{net.network}\"]",
           f"STREAMING_MAX_VIEWERS={viewers + 4}", "STREAMING_LOG_LEVEL=warning"]  # fmt: skip
    command = [*env, STREAMLAB, "serve", "--source", SOURCE, "--name", "cam",
               "--host", net.server_address, "--port", "8080"]  # fmt: skip
    if forward is not None:
        command += ["--forward", forward]
    child = Child(net.command("server", command), what="streamlab serve")
    child.ready("viewer:", 40.0)
    return child


async def watch(net: KernelBottleneck, mode: str, count: int, seconds: float,
                pids: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    """Connect ``count`` viewers, then measure for ``seconds``."""
    address = net.viewer_address
    janus_url = f"http://{net.server_address}:8088/janus"
    base = f"http://{net.server_address}:8080/"
    viewers: list[WhepClient] = []
    try:
        for _ in range(count):
            if mode == "janus":
                viewer: WhepClient = JanusViewer(janus_url, MOUNTPOINT, addresses=(address,))
            else:
                viewer = WhepClient(base + "whep/cam", addresses=(address,))
            await viewer.connect(read_codes=False)
            viewers.append(viewer)
        await asyncio.gather(*(v.wait_frames(10, within_s=30) for v in viewers))
        await asyncio.sleep(WARMUP_S)
        frames = [v.received.frames for v in viewers]
        cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        used = {name: (cpu_seconds(pid) - cpu[name]) / elapsed for name, pid in pids.items()}
        fps = [(v.received.frames - f) / elapsed for v, f in zip(viewers, frames, strict=True)]
    finally:
        await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)
    return {
        "mode": mode,
        "viewers": count,
        "streamlab_cpu": round(used["streamlab"], 3),
        "janus_cpu": round(used["janus"], 3) if "janus" in used else None,
        "fps_mean": round(sum(fps) / len(fps), 1),
        "fps_min": round(min(fps), 1),
    }


def run_round(net: KernelBottleneck, folder: str, mode: str, count: int,
              seconds: float) -> dict[str, Any]:  # fmt: skip
    janus = None
    forward = None
    if mode == "janus":
        janus = LocalJanus(folder, command=net.command("server", [])).start()
        forward = f"janus:http://{net.server_address}:8088/janus?id={MOUNTPOINT}"
    try:
        with serve(net, forward, count) as served:
            pids = {"streamlab": served.pid}
            if janus is not None and janus.pid is not None:
                pids["janus"] = janus.pid
                time.sleep(2.0)  # the mountpoint is made
            return in_namespace(net.viewer_ns, lambda: watch(net, mode, count, seconds, pids))
    finally:
        if janus is not None:
            janus.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="1,10", help="viewer counts, e.g. 1,10,20")
    parser.add_argument("--modes", default="direct,janus")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    reason = available() or janus_available()
    if reason is not None:
        print(f"janus_probe: {reason}", file=sys.stderr)
        return 1
    rows = []
    with KernelBottleneck(None, tag=f"jprobe-{os.getpid() % 10000}") as net:
        for mode in args.modes.split(","):
            for count in (int(n) for n in args.viewers.split(",")):
                with tempfile.TemporaryDirectory(prefix="streamlab-janus-") as folder:
                    row = run_round(net, folder, mode, count, args.seconds)
                print(json.dumps(row), flush=True)
                rows.append(row)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
