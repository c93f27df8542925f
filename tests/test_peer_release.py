"""What a viewer's peer connection holds: its RTP history only as long as a NACK can use
it, and nothing once the viewer leaves (the history at once, the rest by reference
counting after the last late check; no cyclic collection needed)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import streamlab as sl
from streamlab.testing import until
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server


async def test_a_closed_viewer_is_freed_without_the_cyclic_collector() -> None:
    server = Server(sl.load_config(port=0))
    server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        client = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await client.wait_frames(90)  # 3 s at 30 fps
        (session,) = server.sessions.values()
        sender = session.viewer.track.sender
        history = sender._RTCRtpSender__rtp_history
        last_second = len(session.viewer.guard._sent)
        assert len(history) >= 30, "packets were kept for retransmission while it played"
        assert len(history) <= 1.5 * last_second + 10, "only about the last second of them"
        peer = weakref.ref(session.pc)
        del session, sender
        gc.collect()
        gc.disable()
        try:
            await client.close()  # DELETE
            await until(lambda: not server.sessions, 10, "the session closes")
            assert not history, "the history is freed as soon as the peer is closed"
            await until(lambda: peer() is None, 10, "the peer freed by reference counting")
        finally:
            gc.enable()
        await asyncio.sleep(0)
