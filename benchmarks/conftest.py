"""Shared benchmark fixtures: one event loop per module, the real RTSP test camera."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

pytest_plugins = ["streamlab.testing"]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop reused across every round of a module's benchmarks."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()
