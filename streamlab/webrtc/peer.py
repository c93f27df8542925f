"""Closing a peer connection completely.

aioice starts its consent-freshness task when ``connect()`` resumes, which can happen after
``close()`` if the connection completed just before it was closed; that task then runs
forever. ``close_peer`` closes the connection and cancels such a task when it appears.

A closed aiortc peer also sits in reference cycles (its transports' event listeners are
bound methods of the peer; our track points back at its sender), so only a full cyclic
collection would free it: ~1,450 objects per peer, and with hundreds of peers connected
such a collection holds the event loop for a second. After the last late check
``close_peer`` removes those listeners and back-references, and reference counting frees
the peer (tested with the collector off). Each sender's RTP history (up to 1,024 packets
kept for retransmissions) is emptied as soon as the peer is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiortc import RTCPeerConnection

_LATE_CHECKS_S = (0.5, 3.0)
RELEASED_AFTER_S = _LATE_CHECKS_S[-1]
"""Seconds after ``close_peer`` returns until the peer's memory is freed."""


def _ice_transports(pc: RTCPeerConnection) -> list[tuple[Any, Any]]:
    """Each (DTLS transport, its ICE transport) of ``pc``: media and data channel."""
    dtls_transports = [t.sender.transport for t in pc.getTransceivers() if t.sender]
    dtls_transports += [t.receiver.transport for t in pc.getTransceivers() if t.receiver]
    if pc.sctp is not None:
        dtls_transports.append(pc.sctp.transport)
    unique = {id(d): d for d in dtls_transports if d is not None}
    return [(dtls, getattr(dtls, "transport", None)) for dtls in unique.values()]


def _ice_connections(pc: RTCPeerConnection) -> list[Any]:
    found = (getattr(ice, "_connection", None) for _, ice in _ice_transports(pc))
    unique = {id(c): c for c in found if c is not None}
    return list(unique.values())


def _cancel_consent(connections: list[Any]) -> None:
    for connection in connections:
        task = getattr(connection, "_query_consent_task", None)
        if task is not None and not task.done():
            task.cancel()


def _emitters(pc: RTCPeerConnection) -> list[Any]:
    """The peer and its transports: everything whose listeners can point back at it."""
    found: list[Any] = [pc, pc.sctp]
    for dtls, ice in _ice_transports(pc):
        found += [dtls, ice, getattr(ice, "iceGatherer", None)]
    unique = {id(e): e for e in found if hasattr(e, "remove_all_listeners")}
    return list(unique.values())


def lighten_sendonly(transceiver: Any) -> None:
    """A send-only transceiver's receiver never gets RTP: drop its bitrate estimator, 1,000
    rate buckets that are two thirds of a peer's objects for the cyclic collector (whose
    full passes over hundreds of peers hold the event loop for up to a second)."""
    receiver = transceiver.receiver
    if getattr(receiver, "_RTCRtpReceiver__remote_bitrate_estimator", None) is not None:
        receiver._RTCRtpReceiver__remote_bitrate_estimator = None


def _drop_histories(pc: RTCPeerConnection) -> None:
    """Free each sender's RTP history now: up to 1,024 sent packets (~1.2 MB at 1.2 kB a
    packet) that only retransmissions need, which a closed sender never sends again."""
    with contextlib.suppress(Exception):
        for transceiver in pc.getTransceivers():
            history = getattr(transceiver.sender, "_RTCRtpSender__rtp_history", None)
            if isinstance(history, dict):
                history.clear()


def _release(pc: RTCPeerConnection, connections: list[Any]) -> None:
    _cancel_consent(connections)
    with contextlib.suppress(Exception):  # aiortc's internals: never fail a close over this
        for emitter in _emitters(pc):
            emitter.remove_all_listeners()
        for transceiver in pc.getTransceivers():
            track: Any = transceiver.sender.track if transceiver.sender else None
            if getattr(track, "sender", None) is not None:
                track.sender = None


async def close_peer(pc: RTCPeerConnection) -> None:
    """Close ``pc``, make sure no ICE task outlives it, then release its cycles."""
    connections = _ice_connections(pc)
    with contextlib.suppress(Exception):
        await pc.close()
    _cancel_consent(connections)
    _drop_histories(pc)
    loop = asyncio.get_running_loop()
    for delay in _LATE_CHECKS_S[:-1]:
        loop.call_later(delay, _cancel_consent, connections)
    loop.call_later(_LATE_CHECKS_S[-1], _release, pc, connections)
