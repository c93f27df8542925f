"""Viewers through Janus: streamlab forwards a stream to Debian's Janus (Streaming plugin).

Janus never offers loopback ICE candidates, so the test makes two network namespaces joined
by a veth pair (198.18.0.0/15): Janus and ``streamlab serve --forward`` run in the server's,
the viewers (aiortc, in a thread moved into the namespace) in the other. Nothing leaves them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiortc.rtp import RtcpPsfbPacket, RtpPacket

from streamlab.camera.launcher import gst_rtsp_available
from streamlab.config import load_config
from streamlab.errors import ConfigError
from streamlab.experiments.bottleneck import KernelBottleneck
from streamlab.experiments.bottleneck import available as namespaces_missing
from streamlab.experiments.netns import in_namespace
from streamlab.experiments.processes import HOSTS, Child
from streamlab.forward import ForwardSpec, JanusSession
from streamlab.forward.janus_viewer import JanusViewer
from streamlab.forward.local import LocalJanus
from streamlab.forward.local import available as janus_missing
from streamlab.forward.rtp import RtpOut
from streamlab.webrtc.server import Server

STREAMLAB = str(Path(sys.executable).with_name("streamlab"))
MOUNTPOINT = 4242
SOURCE = "synthetic://?size=640x360&fps=30&objects=2"

# -- the spec and bad input (no Janus needed) --------------------------------------------


def test_a_forward_spec_reads_the_url_and_its_options() -> None:
    spec = ForwardSpec.parse("janus:http://10.1.2.3:8088/janus?id=7&codec=h264&rung=1")
    assert (spec.url, spec.host, spec.mountpoint_id, spec.codec, spec.rung) == (
        "http://10.1.2.3:8088/janus", "10.1.2.3", 7, "h264", "1")  # fmt: skip
    assert [spec.id_for("a", 0), spec.id_for("b", 1)] == [7, 8]
    plain = ForwardSpec.parse("janus:http://janus.local:8088/janus")
    assert plain.codec == "vp8" and plain.id_for("cam", 0) == plain.id_for("cam", 3) > 0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("http://127.0.0.1:8088/janus", "janus:http"),
        ("janus:ftp://127.0.0.1/janus", "HTTP API URL"),
        ("janus:http://127.0.0.1:99999/janus", "bad port"),
        ("janus:http://127.0.0.1:8088/janus?id=-3", "positive integer"),
        ("janus:http://127.0.0.1:8088/janus?codec=av1", "codec must be"),
        ("janus:http://127.0.0.1:8088/janus?colour=red", "unknown forward option"),
    ],
)
def test_a_bad_forward_spec_is_one_clear_error(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        ForwardSpec.parse(text)


def test_the_cli_refuses_a_bad_forward_with_one_line() -> None:
    done = subprocess.run(
        [STREAMLAB, "serve", "--source", SOURCE, "--port", "0", "--forward", "janus:nowhere"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "janus:http" in done.stderr


async def test_an_unreachable_janus_is_retried_quietly_and_stops_at_once() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Server(load_config(port=0))
    server.add_stream(SOURCE, name="cam")
    with structlog.testing.capture_logs() as logs:
        (forward,) = server.add_forward(f"janus:http://127.0.0.1:{port}/janus?id=5")
        await server.start()
        try:
            for _ in range(100):
                if forward.state == "retrying" and forward.error:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.2)  # a retry or two, same failure
            async with aiohttp.ClientSession() as http, http.get(f"{server.url}api/streams") as r:
                shown = (await r.json())["streams"][0]["forwards"][0]
        finally:
            started = time.monotonic()
            await server.stop()
            stop_s = time.monotonic() - started
    assert shown["state"] == "retrying" and "cannot connect" in shown["error"]
    assert shown["packets"] == 0 and shown["mountpoint"] == 5
    warnings = [e for e in logs if e["event"] == "forward_retrying"]
    assert len(warnings) == 1  # one line, not one per attempt
    assert stop_s < 5 and forward.state == "stopped"
    assert server.streams["cam"].delivery.encoders == {}  # nothing encoded for it


async def test_rtp_out_packetises_frames_and_hears_keyframe_requests() -> None:
    import av

    loop = asyncio.get_running_loop()
    received: list[bytes] = []
    janus_side = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    janus_side.bind(("127.0.0.1", 0))
    janus_side.setblocking(False)
    port = janus_side.getsockname()[1]
    asked: list[int] = []
    out = RtpOut("vp8", on_keyframe_request=lambda: asked.append(1))
    await out.open("127.0.0.1")
    out.set_ports(port, port, port)
    try:
        big = av.Packet(bytes(range(256)) * 12)  # 3 kB: three RTP packets
        big.pts, big.time_base = 9000, Fraction(1, 90000)
        assert not out.send_frame([big], keyframe=False)  # waits for a keyframe
        assert out.send_frame([big], keyframe=True)
        out.send_report()
        assert out.send_data(json.dumps({"type": "analysis"}))
        for _ in range(5):
            data, sender = await asyncio.wait_for(loop.sock_recvfrom(janus_side, 2048), 2)
            received.append(data)
        rtp = [RtpPacket.parse(d) for d in received[:3]]
        assert [p.marker for p in rtp] == [0, 0, 1]
        assert len({p.timestamp for p in rtp}) == 1 and rtp[0].ssrc == out.ssrc
        assert [(p.sequence_number - rtp[0].sequence_number) % 65536 for p in rtp] == [0, 1, 2]
        assert received[3][1] == 200  # a sender report
        assert json.loads(received[4]) == {"type": "analysis"}
        pli = bytes(RtcpPsfbPacket(fmt=1, ssrc=1, media_ssrc=out.ssrc))
        await loop.sock_sendto(janus_side, pli, sender)
        for _ in range(50):
            if asked:
                break
            await asyncio.sleep(0.02)
        assert asked == [1] and out.keyframe_requests == 1
    finally:
        out.close()
        janus_side.close()


# -- through a real Janus, inside network namespaces --------------------------------------

needs_janus = pytest.mark.skipif(
    (namespaces_missing() or janus_missing()) is not None,
    reason=f"needs root, iproute2 and Debian's janus: {namespaces_missing() or janus_missing()}",
)


class Rig:
    """Janus and ``streamlab serve --forward`` in the server namespace."""

    def __init__(self, net: KernelBottleneck, folder: str) -> None:
        self.net = net
        self.janus = LocalJanus(folder, command=net.command("server", []))
        host = net.server_address
        self.janus_url = f"http://{host}:8088/janus"
        self.api = f"http://{host}:8080/"
        self.served: Child | None = None

    def serve(self) -> None:
        command = ["env", "STREAMING_ALLOW_PUBLIC_BIND=true", STREAMLAB, "serve",
                   "--source", SOURCE, "--name", "cam", "--analyze", "motion",
                   "--host", self.net.server_address, "--port", "8080",
                   "--forward", f"janus:{self.janus_url}?id={MOUNTPOINT}"]  # fmt: skip
        self.served = Child(self.net.command("server", command), what="streamlab serve")
        self.served.ready("viewer:", 40.0)

    def run(self, main: Any) -> Any:
        """``main()`` on an event loop inside the viewers' namespace."""
        return in_namespace(self.net.viewer_ns, main)


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    with KernelBottleneck(None, tag=f"janus-{os.getpid() % 10000}") as net, \
            tempfile.TemporaryDirectory(prefix="streamlab-janus-") as folder:  # fmt: skip
        made = Rig(net, folder)
        made.janus.start()
        try:
            made.serve()
            yield made
        finally:
            if made.served is not None:
                made.served.stop()
            made.janus.stop()


async def forward_of(rig: Rig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the forward, the stream's delivery) as ``/api/streams`` shows them."""
    async with aiohttp.ClientSession() as http, http.get(rig.api + "api/streams") as response:
        stream = (await response.json())["streams"][0]
    return stream["forwards"][0], stream["delivery"]


async def until(check: Any, within_s: float = 15.0) -> Any:
    """Poll the async ``check()`` until it returns something truthy (its last value)."""
    deadline = time.monotonic() + within_s
    value = None
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.2)
    return value


async def mountpoints(rig: Rig) -> set[int]:
    janus = await JanusSession(rig.janus_url).open()
    try:
        listed = await janus.request({"request": "list"})
        return {int(m["id"]) for m in listed.get("list", [])}
    finally:
        await janus.close()


@needs_janus
def test_a_viewer_through_janus_decodes_the_stream_and_its_pli_reaches_the_encoder(
    rig: Rig,
) -> None:
    async def main() -> dict[str, Any]:
        async def forwarding() -> Any:
            forward, _ = await forward_of(rig)
            return forward if forward["state"] == "forwarding" and forward["packets"] else None

        assert await until(forwarding), "the forward never reached forwarding"
        assert MOUNTPOINT in await mountpoints(rig)
        viewer = JanusViewer(rig.janus_url, MOUNTPOINT, addresses=(rig.net.viewer_address,))
        await viewer.connect()
        try:
            received = await viewer.wait_frames(30, within_s=20)
            frames, sizes = received.frames, set(received.sizes)
            await until(lambda: _truthy(len(viewer.received.messages) >= 3), 10)
            messages = list(viewer.received.messages)
            await asyncio.sleep(1.2)  # Janus forwards at most one PLI a second
            before, delivery = await forward_of(rig)
            keyframes = delivery["keyframes"]
            await viewer.request_keyframe()

            async def answered() -> Any:
                forward, now = await forward_of(rig)
                grown = forward["plis"] > before["plis"] and now["keyframes"] > keyframes
                return (forward, now) if grown else None

            answer = await until(answered, 10)
            async with aiohttp.ClientSession() as http, http.get(rig.api + "metrics") as r:
                metrics = await r.text()
        finally:
            await viewer.close()
        return {"frames": frames, "sizes": sizes, "messages": messages, "answer": answer,
                "before": before, "keyframes": keyframes, "metrics": metrics}  # fmt: skip

    got = rig.run(main)
    assert got["frames"] >= 30 and got["sizes"] == {(640, 360)}
    assert got["messages"][0]["type"] == "analysis" and "analysis" in got["messages"][0]
    assert got["answer"], (
        f"Janus's PLI did not reach the encoder: before {got['before']}, "
        f"keyframes {got['keyframes']}"
    )
    forward, delivery = got["answer"]
    assert forward["encoder"] == "vp8/source" and forward["bytes"] > 10_000
    assert forward["sender_reports"] >= 1 and forward["data_messages"] >= 1
    encoder = next(e for e in delivery["encoders"] if e["key"] == "vp8/source")
    assert encoder["keyframe_requests"] >= forward["plis"]  # through the same limiter
    assert f'streamlab_forward_keyframe_requests_total{{mountpoint="{MOUNTPOINT}"' in got["metrics"]
    assert "streamlab_forward_packets_total" in got["metrics"]


async def _truthy(value: bool) -> bool:
    return value


CHROMIUM = "/usr/bin/chromium"
PAGE_STATE = """() => {
  const s = window.streamlab;
  return s ? {decoded: s.stats.framesDecoded || 0, size: s.stats.size || null, state: s.state,
              analysis: !!s.analysis, drawn: s.overlayDrawn || 0} : null;
}"""


def watch_in_chromium(rig: Rig, folder: str) -> dict[str, Any]:
    """The viewer page, ``?via=janus``, in Debian's Chromium inside the viewers' namespace
    (Playwright talks to it over a pipe); the page's state once it decoded 30 frames."""
    from playwright.sync_api import sync_playwright

    wrapper = Path(folder) / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {rig.net.viewer_ns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(wrapper), args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--autoplay-policy=no-user-gesture-required",
            "--disable-features=WebRtcHideLocalIpsWithMdns"])  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(rig.api + "?via=janus&stream=cam")
            state: dict[str, Any] = {}
            for _ in range(100):
                state = page.evaluate(PAGE_STATE) or {}
                if state.get("decoded", 0) >= 30 and state.get("drawn"):
                    break
                page.wait_for_timeout(200)
            return state
        finally:
            browser.close()


@needs_janus
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_chromium_watches_through_janus_on_the_viewer_page(rig: Rig, tmp_path: Path) -> None:
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API keeps a loop of its own
        state = pool.submit(watch_in_chromium, rig, str(tmp_path)).result(timeout=90)
    assert state.get("decoded", 0) >= 30, f"Chromium through Janus: {state}"
    assert state["analysis"] and state["state"] == "connected", f"Chromium through Janus: {state}"
    assert state["drawn"] > 0  # the boxes from Janus's data channel, on the picture


@needs_janus
@pytest.mark.rtsp
@pytest.mark.skipif(not gst_rtsp_available(), reason="needs the GStreamer RTSP server")
def test_a_passthrough_forward_sends_the_cameras_own_units(rig: Rig) -> None:
    camera_command = [*HOSTS, "camera", "--size", "640x360"]
    with Child(rig.net.command("server", camera_command), what="test camera") as camera:
        source = camera.ready("camera:", 40.0)
        api = f"http://{rig.net.server_address}:8081/"
        command = ["env", "STREAMING_ALLOW_PUBLIC_BIND=true", STREAMLAB, "serve",
                   "--source", source, "--name", "door", "--codec", "passthrough",
                   "--host", rig.net.server_address, "--port", "8081",
                   "--forward", f"janus:{rig.janus_url}?id={MOUNTPOINT + 1}&codec=passthrough"]  # fmt: skip
        with Child(rig.net.command("server", command), what="streamlab serve") as served:
            served.ready("viewer:", 40.0)

            async def main() -> dict[str, Any]:
                async def forwarding() -> Any:
                    async with aiohttp.ClientSession() as http, http.get(api + "api/streams") as r:
                        stream = (await r.json())["streams"][0]
                    return stream["forwards"][0]["state"] == "forwarding"

                assert await until(forwarding, 20)
                viewer = JanusViewer(rig.janus_url, MOUNTPOINT + 1,
                                     addresses=(rig.net.viewer_address,))  # fmt: skip
                await viewer.connect()
                try:
                    received = await viewer.wait_frames(30, within_s=20)
                finally:
                    await viewer.close()
                async with aiohttp.ClientSession() as http, http.get(api + "api/streams") as r:
                    stream = (await r.json())["streams"][0]
                return {"frames": received.frames, "sizes": set(received.sizes),
                        "codec": viewer.codec, "stream": stream}  # fmt: skip

            got = rig.run(main)
    assert got["frames"] >= 30 and got["sizes"] == {(640, 360)} and got["codec"] == "video/H264"
    forward, delivery = got["stream"]["forwards"][0], got["stream"]["delivery"]
    assert forward["encoder"] == "passthrough/source" and forward["packets"] > 0
    assert delivery["encoders"] == [] and delivery["passthrough_units"] > 0  # no transcode


@needs_janus
def test_a_janus_restart_is_survived(rig: Rig) -> None:
    rig.janus.stop()
    rig.janus.start()

    async def main() -> dict[str, Any]:
        async def back() -> Any:
            forward, _ = await forward_of(rig)
            return forward if forward["state"] == "forwarding" and forward["restarts"] else None

        forward = await until(back, 20)
        assert forward, "the forward did not make the mountpoint again"
        assert MOUNTPOINT in await mountpoints(rig)
        viewer = JanusViewer(rig.janus_url, MOUNTPOINT, addresses=(rig.net.viewer_address,))
        await viewer.connect()
        try:
            received = await viewer.wait_frames(15, within_s=20)
        finally:
            await viewer.close()
        return {"forward": forward, "frames": received.frames}

    got = rig.run(main)
    assert got["forward"]["restarts"] >= 1 and got["frames"] >= 15


@needs_janus
def test_the_mountpoint_is_removed_when_streamlab_stops(rig: Rig) -> None:
    assert rig.served is not None
    assert MOUNTPOINT in rig.run(lambda: mountpoints(rig))
    os.kill(rig.served.pid, signal.SIGTERM)  # streamlab serve stops as on Ctrl-C
    rig.served.process.wait(20)
    assert rig.served.process.returncode == 0
    assert MOUNTPOINT not in rig.run(lambda: mountpoints(rig))
