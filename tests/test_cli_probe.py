"""``streamlab probe`` and ``streamlab camera`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamlab.camera.launcher import TestCamera, free_port
from streamlab.testing import require_gst_rtsp

STREAMLAB = [sys.executable, "-m", "streamlab.cli"]
KEYS = {"width", "height", "codec", "fps", "frames", "first_frame_s", "max_gap_s",
        "reconnects", "stalls", "dropped", "state"}  # fmt: skip


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STREAMLAB, *args], capture_output=True, text=True, timeout=timeout)


def test_probe_rtsp_json(camera: TestCamera) -> None:
    done = run("probe", camera.url, "--frames", "45", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) >= KEYS
    assert (report["width"], report["height"], report["codec"]) == (640, 480, "h264")
    assert report["frames"] == 45
    assert 15 <= report["fps"] <= 45
    assert 0 < report["first_frame_s"] < 10
    assert report["state"] == "stopped"


def test_probe_synthetic_with_duration_and_buffering() -> None:
    done = run("probe", "synthetic://?size=320x240&fps=20", "--duration", "1", "--json",
               "--buffering", "drop_oldest:2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert 10 <= report["frames"] <= 30
    assert report["codec"] == "raw"


def test_probe_reports_analysis_stats() -> None:
    done = run("probe", "synthetic://?size=320x240&fps=30", "--frames", "40", "--json",
               "--analyze", "motion,people", "--skipping", "every_nth:2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["frames"] == 40
    assert 5 <= report["analysed"] <= 21  # at most every 2nd frame; fewer if the worker is busy
    assert report["skipping"] == "every_nth:2"
    assert set(report["detector_ms"]) == {"motion", "people"}
    assert report["detections"] > 0
    assert report["analysis_lag_frames"] is not None and report["analysis_lag_frames"] >= 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("probe", f"rtsp://127.0.0.1:{free_port()}/cam"), "connection refused"),
        (("probe", "rtsp://"), "malformed"),
        (("probe", "gopher://x"), "unsupported source scheme"),
        (("probe", "/no/such/file.mp4"), "not found"),
        (("probe", "synthetic://", "--buffering", "bogus"), "unknown buffering strategy"),
        (("probe", "synthetic://", "--frames", "0"), "at least 1"),
        (("probe", "synthetic://", "--analyze", "cats"), "unknown detector 'cats'"),
        (("probe", "synthetic://", "--skipping", "every_nth:0"), "every_nth"),
    ],
)
def test_probe_errors_are_one_line(args: tuple[str, ...], needle: str) -> None:
    done = run(*args)
    assert done.returncode != 0
    assert needle in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_camera_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    require_gst_rtsp()
    port = free_port()
    process = subprocess.Popen(
        [*STREAMLAB, "camera", "--port", str(port), "--size", "320x240", "--fps", "15"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"rtsp://127.0.0.1:{port}/cam" in line
        done = run("probe", f"rtsp://127.0.0.1:{port}/cam", "--frames", "10", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert (report["width"], report["height"]) == (320, 240)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    time.sleep(0.2)
    leftovers = subprocess.run(["pgrep", "-f", f"rtsp_server.py --port {port}"],
                               capture_output=True)  # fmt: skip
    assert leftovers.returncode == 1, "the camera server outlived the CLI"
    assert os.path.exists("/usr/bin/python3")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--codec", "passthrough"), "needs an H.264 RTSP camera"),
        (("--codec", "h266"), "unknown codec strategy 'h266'"),
        (("--host", "0.0.0.0", "--port", "0"), "STREAMING_AUTH_TOKEN"),
        (("--quality", "fixed:999x1"), "unknown quality level"),
        (("--analyze", "cats", "--port", "0"), "unknown detector 'cats'"),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(args: tuple[str, ...], needle: str) -> None:
    done = run("serve", "--source", "synthetic://?size=320x240", *args, timeout=30)
    assert done.returncode == 2
    assert needle in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr


def test_probe_reports_the_transport_of_a_udp_only_camera(camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(transport="udp", size=(320, 240))
    done = run("probe", camera.url, "--frames", "10", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["transport"] == "udp"
    assert report["error"] is None and report["recovered"] == []


def test_probe_reports_a_recovered_outage_apart_from_errors(camera: TestCamera) -> None:
    from streamlab.camera.faults import CuttingProxy

    # every connection is cut 1.5 s after it opens (<= 45 frames at 30 fps), so 75 frames
    # need at least one outage; the probe ends on its 75th frame, streaming again
    with CuttingProxy(camera.port, cut_after_s=1.5) as proxy:
        done = subprocess.run(
            [*STREAMLAB, "probe", proxy.url(camera.path), "--frames", "75", "--retry", "--json"],
            capture_output=True, text=True, timeout=90,
            env={**os.environ, "STREAMING_RECONNECT_MAX_S": "0.5"},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["frames"] == 75
    assert report["reconnects"] >= 1
    assert report["error"] is None, "it ended streaming: no final error"
    assert len(report["recovered"]) >= 1 and all(report["recovered"])
