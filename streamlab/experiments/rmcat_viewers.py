"""Several aiortc viewers of one stream in one process, each its own WebRTC flow, joining
and leaving on a plan: the media flows of an RMCAT case (run inside the viewer namespace).

``python -m streamlab.experiments.rmcat_viewers --url URL --address A --plan JSON
--seconds S --out FILE``: ``plan`` is a list of flows, each a list of ``[start_s, end_s]``
sessions (a flow that pauses and resumes has two). The process prints ``t0: EPOCH`` (the
run's second 0, a moment after its imports are done), runs until ``t0 + seconds`` and
writes FILE: a sample every ``INTERVAL_S`` (per flow: RTP bytes and frames received so far,
the last frame's size, and what ``/api/streams`` says of it) and, per flow, each frame's
one-way delay read from its frame code (the camera's capture clock is this machine's) and
each session's frame arrivals (for the W3C smoothness figures). Then it prints ``done:``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamlab import framecode
from streamlab.webrtc.client import WhepClient

INTERVAL_S = 0.5
START_DELAY_S = 1.0


class FlowClient(WhepClient):
    """A ``WhepClient`` that also counts the RTP bytes it receives and reads each frame's
    code from the luma plane only (no colour conversion), keeping its one-way delay."""

    def __init__(self, url: str, address: str) -> None:
        super().__init__(url, addresses=(address,), data_channel=False)
        self.rtp_bytes = 0
        self.owd: list[tuple[float, float]] = []  # (wall-clock second, one-way delay ms)

    async def start(self) -> FlowClient:
        """Connect, then count every RTP packet's bytes as it arrives."""
        await self.connect(read_codes=False)
        pc = self.pc
        assert pc is not None
        dtls = next((t.receiver.transport for t in pc.getTransceivers() if t.receiver), None)
        if dtls is not None:
            original = dtls._handle_rtp_data

            async def counted(data: bytes, arrival_time_ms: int) -> None:
                self.rtp_bytes += len(data)
                await original(data, arrival_time_ms)

            dtls._handle_rtp_data = counted  # type: ignore[method-assign]
        return self

    def _on_frame(self, frame: Any, read_codes: bool) -> None:
        """Counted as any WHEP client's, then its one-way delay from the frame code (read
        from the Y plane only)."""
        super()._on_frame(frame, False)
        code = _code_of(frame)
        if code is not None and len(self.owd) < 100_000:
            now = time.time()
            self.owd.append((now, now * 1000.0 - code.captured_ms))


def _code_of(frame: Any) -> framecode.FrameCode | None:
    """The frame code read from the Y plane of a decoded I420 frame (None: unreadable)."""
    if frame.width < framecode.MIN_WIDTH:
        return None
    plane = frame.planes[0]
    luma = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
    return framecode.try_read(luma[:, : frame.width])


@dataclass
class Flow:
    """One flow of the plan: its sessions, the live client, and what ended sessions got."""

    sessions: list[tuple[float, float]]
    client: FlowClient | None = None
    bytes_done: int = 0
    frames_done: int = 0
    owd: list[tuple[float, float]] = field(default_factory=list)
    arrivals: list[list[tuple[float, int, int]]] = field(default_factory=list)
    started: set[int] = field(default_factory=set)
    task: asyncio.Task[Any] | None = None

    def totals(self) -> tuple[int, int]:
        client = self.client
        if client is None:
            return self.bytes_done, self.frames_done
        return self.bytes_done + client.rtp_bytes, self.frames_done + client.received.frames

    async def leave(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        self.bytes_done += client.rtp_bytes
        self.frames_done += client.received.frames
        self.owd.extend(client.owd)
        received = client.received
        pairs = zip(received.arrivals, received.frame_sizes, strict=False)
        self.arrivals.append([(a * 1000.0, w, h) for a, (w, h) in pairs])
        with contextlib.suppress(Exception):
            await client.close()


async def _join(flow: Flow, url: str, address: str) -> None:
    client = FlowClient(url, address)
    try:
        flow.client = await client.start()
    except Exception as exc:  # a flow that cannot join is recorded as getting nothing
        print(f"rmcat viewer: join failed: {exc}", file=sys.stderr, flush=True)


async def _views(base_url: str) -> dict[str, dict[str, Any]]:
    """What ``/api/streams`` says of each viewer, by its id ({} for the restreamer)."""
    import aiohttp

    try:
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as http, \
                http.get(base_url + "api/streams") as response:  # fmt: skip
            info = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return {}
    views = {}
    for stream in info.get("streams") or []:
        for viewer in stream.get("viewers") or []:
            views[str(viewer.get("id"))] = {
                key: viewer.get(key) for key in ("rung", "target_bps", "estimate_bps",
                                                 "delivered_bps", "queue_delay_ms", "loss")
            } | {"probes": len(viewer.get("probes") or [])}  # fmt: skip
    return views


def _view_for(flow: Flow, views: dict[str, dict[str, Any]]) -> dict[str, Any]:
    client = flow.client
    if client is None or not client.location:
        return {}
    return views.get(client.location.rstrip("/").rsplit("/", 1)[-1], {})


async def run(base_url: str, address: str, plan: list[list[tuple[float, float]]],
              seconds: float) -> dict[str, Any]:  # fmt: skip
    """Run the plan; return the samples and per-flow frames (see the module docstring)."""
    url = base_url + "whep/cam"
    flows = [Flow(sessions=[(float(a), float(b)) for a, b in sessions]) for sessions in plan]
    t0 = time.time() + START_DELAY_S
    print(f"t0: {t0!r}", flush=True)
    samples: list[dict[str, Any]] = []
    await asyncio.sleep(max(0.0, t0 - time.time()))
    tick = 0
    while True:
        t = time.time() - t0
        for flow in flows:
            for index, (start, end) in enumerate(flow.sessions):
                if start <= t < end and index not in flow.started and flow.task is None:
                    flow.started.add(index)
                    flow.task = asyncio.create_task(_join(flow, url, address))
                if t >= end and index in flow.started and flow.client is not None \
                        and not any(a <= t < b for a, b in flow.sessions):  # fmt: skip
                    await flow.leave()
            if flow.task is not None and flow.task.done():
                flow.task = None
        views = await _views(base_url)
        record: dict[str, Any] = {"t": round(time.time() - t0, 3), "flows": []}
        for flow in flows:
            total_bytes, frames = flow.totals()
            client = flow.client
            size = client.received.frame_sizes[-1] if client and client.received.frame_sizes \
                else None  # fmt: skip
            record["flows"].append({"bytes": total_bytes, "frames": frames, "size": size,
                                    "active": client is not None,
                                    **_view_for(flow, views)})  # fmt: skip
        samples.append(record)
        if t >= seconds:
            break
        tick += 1
        await asyncio.sleep(max(0.0, t0 + tick * INTERVAL_S - time.time()))
    for flow in flows:
        if flow.task is not None:
            flow.task.cancel()
            with contextlib.suppress(BaseException):
                await flow.task
        await flow.leave()
    return {"t0": t0, "samples": samples,
            "flows": [{"owd": [(round(at - t0, 3), round(ms, 1)) for at, ms in flow.owd],
                       "arrivals": flow.arrivals} for flow in flows]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamlab.experiments.rmcat_viewers")
    parser.add_argument("--url", required=True, help="the server's base URL")
    parser.add_argument("--address", required=True, help="local address for ICE")
    parser.add_argument("--plan", required=True, help="JSON: per flow, [[start_s, end_s]...]")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True, help="result JSON file")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.url, args.address, json.loads(args.plan), args.seconds))
    with open(args.out, "w") as file:
        json.dump(result, file)
    print("done: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
