"""ICE consent freshness that survives a busy peer (RFC 7675), for every aioice connection.

aioice sends a consent check every ~5 s as a single STUN request with no retransmission,
waits 0.5 s for the answer, and closes the connection after 6 unanswered checks in a row.
A peer whose event loop is held for over half a second (hundreds of viewers connecting at
once on 2 cores holds a server's loop up to 1.3 s) answers late, so its checks fail one
after the other although it is alive, and healthy sessions are torn down.

``install()`` replaces aioice's ``Connection.query_consent`` with the RFC's rule: each check
is retransmitted with the usual STUN back-off (answers up to 3.5 s late count), and consent
expires when no check has been answered for ``CONSENT_INTERVAL x CONSENT_FAILURES`` seconds
(30 s with aioice's values, which tests may lower). A peer that is gone is still reaped
within about that time plus one check. aioice internals (``_nominated``, ``build_request``,
``remote_password``): re-check on upgrading aioice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import aioice.ice as _ice
from aioice import stun

RETRANSMISSIONS = 2  # STUN back-off from 0.5 s: sent at 0, 0.5 and 1.5 s, given up at 3.5 s

log = logging.getLogger("streamlab.webrtc.consent")


async def query_consent(self: Any) -> None:
    """Check consent every ~CONSENT_INTERVAL s; close when none was answered for
    CONSENT_INTERVAL x CONSENT_FAILURES s (bound to ``aioice.ice.Connection``)."""
    assert self.remote_password is not None
    answered = time.monotonic()
    while True:
        await asyncio.sleep(_ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
        for pair in list(self._nominated.values()):
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request, pair.remote_addr,
                    integrity_key=self.remote_password.encode("utf8"),
                    retransmissions=RETRANSMISSIONS,
                )  # fmt: skip
                answered = time.monotonic()
            except stun.TransactionError as exc:
                # The failed transaction's future keeps the exception; its frames (this one
                # included) would hold the whole connection in a cycle until a full gc.
                exc.__traceback__ = None
        if time.monotonic() - answered >= _ice.CONSENT_INTERVAL * _ice.CONSENT_FAILURES:
            log.info("ICE consent expired: no check answered for %.0f s",
                     time.monotonic() - answered)  # fmt: skip
            self._query_consent_task = None
            await self.close()
            return


def install() -> None:
    """Use ``query_consent`` for every aioice connection of this process (idempotent)."""
    _ice.Connection.query_consent = query_consent  # type: ignore[method-assign]
