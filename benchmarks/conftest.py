"""Shared benchmark fixtures: one event loop per module, the real RTSP test camera."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from streamlab.camera.launcher import TestCamera, gst_rtsp_available

pytest_plugins = ["streamlab.testing"]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop reused across every round of a module's benchmarks."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module")
def rtsp_camera() -> Iterator[TestCamera]:
    """One 640x480@30 RTSP test camera shared by a module's benchmarks."""
    if not gst_rtsp_available():
        pytest.skip("needs the GStreamer RTSP server")
    with TestCamera(size=(640, 480), fps=30) as camera:
        yield camera
