"""Test harness shipped with streamlab: pytest fixtures for a real RTSP camera and helpers.

Enable in a test suite with ``pytest_plugins = ["streamlab.testing"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamlab.camera.launcher import TestCamera, free_port, gst_rtsp_available
from streamlab.frame import Frame
from streamlab.sources.base import Subscription


def require_gst_rtsp() -> None:
    """Skip the calling test when Debian's GStreamer RTSP server is not installed."""
    if not gst_rtsp_available():
        pytest.skip("needs Debian's GStreamer RTSP server (make test installs it)")


@pytest.fixture
def camera_factory() -> Iterator[Callable[..., TestCamera]]:
    """Start test cameras with any options; all are stopped after the test."""
    require_gst_rtsp()
    cameras: list[TestCamera] = []

    def make(**options: Any) -> TestCamera:
        camera = TestCamera(**options)
        cameras.append(camera)
        return camera.start()

    yield make
    for camera in cameras:
        camera.stop()


@pytest.fixture
def camera(camera_factory: Callable[..., TestCamera]) -> TestCamera:
    """A running synthetic 640x480@30 RTSP camera on a free port of 127.0.0.1."""
    return camera_factory()


async def take(subscription: Subscription, count: int, *, within_s: float = 30.0) -> list[Frame]:
    """The next ``count`` frames of a subscription (fails the test after ``within_s`` s)."""
    frames: list[Frame] = []

    async def collect() -> None:
        while len(frames) < count:
            frames.append(await subscription.get())

    await asyncio.wait_for(collect(), within_s)
    return frames


_known_source_threads: set[threading.Thread] = set()


def _live_source_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("source:") and t.is_alive()]


@pytest.fixture(autouse=True)
def _source_threads_before_the_test() -> None:
    """Remember the source threads alive when a test starts (see ``source_threads``)."""
    _known_source_threads.clear()
    _known_source_threads.update(_live_source_threads())


def source_threads() -> list[threading.Thread]:
    """Live source threads (named ``source:...``) started during the current test, to
    check that nothing leaked. One an earlier test leaked fails that test, not this one."""
    return [t for t in _live_source_threads() if t not in _known_source_threads]


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser).

    Module-scoped: Playwright's sync API keeps an event loop running in this thread while
    it is open, so keep browser tests and asyncio tests in separate modules.
    """
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def chromium_page(chromium_browser: Any) -> Iterator[Any]:
    """A fresh page in its own browser context."""
    context = chromium_browser.new_context()
    page = context.new_page()
    yield page
    context.close()


async def until(
    predicate: Callable[[], bool],
    within_s: float,
    what: str,
    detail: Callable[[], object] | None = None,
) -> float:
    """Seconds until ``predicate()`` holds, checked every 10 ms (fails the test after
    ``within_s``, with ``detail()`` in the message: the state that explains why)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within_s:
            why = f" ({detail()})" if detail is not None else ""
            pytest.fail(f"{what}: not within {within_s:.1f} s{why}")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@contextlib.contextmanager
def served_by_cli(*args: str) -> Iterator[str]:
    """``streamlab serve ARGS`` on a free port in its own process: yields its viewer URL;
    afterwards stops it and checks that it exited cleanly (code 0)."""
    command = [sys.executable, "-m", "streamlab.cli", "serve", *args, "--port", str(free_port())]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = ""
        for _ in range(5):
            line = process.stdout.readline()
            if line.startswith("viewer: "):
                url = line.split(" ", 1)[1].strip()
                break
        assert url, "streamlab serve did not print its viewer URL"
        yield url
    finally:
        process.terminate()
        code = process.wait(20)
    assert code == 0, f"streamlab serve exited with {code}"
