"""ICE consent freshness (``streamlab.webrtc.consent``) between two real aioice agents on
127.0.0.1: a peer that answers late keeps its connection, a peer that is gone loses it."""

from __future__ import annotations

import asyncio
from typing import Any

import aioice
import aioice.ice
import pytest

import streamlab.webrtc  # noqa: F401  (installs the consent checks)
from streamlab.testing import until
from streamlab.webrtc.ice import local_addresses


async def pair() -> tuple[Any, Any]:
    """Two connected aioice agents (one component) on loopback."""
    with local_addresses(("127.0.0.1",)):
        a = aioice.Connection(ice_controlling=True, components=1)
        b = aioice.Connection(ice_controlling=False, components=1)
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for here, there in ((a, b), (b, a)):
        for candidate in there.local_candidates:
            await here.add_remote_candidate(candidate)
        await here.add_remote_candidate(None)
        here.remote_username, here.remote_password = there.local_username, there.local_password
    await asyncio.gather(a.connect(), b.connect())
    return a, b


@pytest.fixture
def quick_consent(monkeypatch: pytest.MonkeyPatch) -> float:
    """Checks every ~0.2 s, consent lost after 1 s without an answer."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 5)
    return 1.0


async def test_a_peer_that_answers_late_keeps_consent(quick_consent: float) -> None:
    a, b = await pair()
    answer = b.request_received
    delayed = 0

    def late(*args: Any) -> None:  # b's loop is "held" for 0.8 s before each answer
        nonlocal delayed
        delayed += 1
        asyncio.get_running_loop().call_later(0.8, answer, *args)

    b.request_received = late
    try:
        await asyncio.sleep(4 * quick_consent)
        assert delayed >= 5, "consent checks kept coming"
        assert not a._closing, "late answers count: aioice's 0.5 s single try would have failed"
        assert a._query_consent_task is not None and not a._query_consent_task.done()
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_a_peer_that_is_gone_loses_consent(quick_consent: float) -> None:
    a, b = await pair()
    b.request_received = lambda *args: None  # alive on the wire, but answers nothing
    try:
        waited = await until(lambda: a._closing, 10, "consent expires")
        assert waited >= quick_consent, "not before the expiry time"
    finally:
        await asyncio.gather(a.close(), b.close())
