"""Closing a peer connection completely.

aioice starts its consent-freshness task when ``connect()`` resumes, which can happen after
``close()`` if the connection completed just before it was closed; that task then runs
forever. ``close_peer`` closes the connection and cancels such a task when it appears.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiortc import RTCPeerConnection

_LATE_CHECKS_S = (0.5, 3.0)


def _ice_connections(pc: RTCPeerConnection) -> list[Any]:
    connections = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport if transceiver.sender else None
        ice = getattr(dtls, "transport", None)
        connection = getattr(ice, "_connection", None)
        if connection is not None:
            connections.append(connection)
    sctp = pc.sctp
    ice = getattr(getattr(sctp, "transport", None), "transport", None)
    connection = getattr(ice, "_connection", None)
    if connection is not None:
        connections.append(connection)
    return connections


def _cancel_consent(connections: list[Any]) -> None:
    for connection in connections:
        task = getattr(connection, "_query_consent_task", None)
        if task is not None and not task.done():
            task.cancel()


async def close_peer(pc: RTCPeerConnection) -> None:
    """Close ``pc`` and make sure no ICE task outlives it."""
    connections = _ice_connections(pc)
    with contextlib.suppress(Exception):
        await pc.close()
    _cancel_consent(connections)
    loop = asyncio.get_running_loop()
    for delay in _LATE_CHECKS_S:
        loop.call_later(delay, _cancel_consent, connections)
