"""The playout-delay RTP header extension on an aiortc sender (see ``delivery.playout``).

aiortc does not know the extension, so for a viewer that offered it we add it to the answer
(``transceiver._headerExtensions``) and replace the sender's header-extension map with one
that also writes it. Both are aiortc-private, so aiortc is pinned in pyproject.toml;
``tests/test_playout.py`` fails when that plumbing moves.
"""

from __future__ import annotations

from typing import Any

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from aiortc.rtp import HeaderExtensionsMap, pack_header_extensions, unpack_header_extensions

from streamlab.delivery.playout import BROWSER_DEFAULT_MAX_MS, URI, PlayoutDelay, offered_id


class PlayoutHint(HeaderExtensionsMap):
    """A sender's header-extension map that also writes the playout-delay extension.

    ``delay`` may change at any time; the next packet carries the new range. A receiver
    keeps the last range it saw, so going back to ``None`` (no hint) after a hint was sent
    keeps sending the browser's own default range (0 to 10 s) instead.
    """

    def __init__(self, extension_id: int, delay: PlayoutDelay | None) -> None:
        super().__init__()
        self.extension_id = extension_id
        self._payload: bytes | None = None
        self.delay = delay

    @property
    def delay(self) -> PlayoutDelay | None:
        return self._delay

    @delay.setter
    def delay(self, value: PlayoutDelay | None) -> None:
        self._delay = value
        if value is not None:
            self._payload = value.payload()
        elif self._payload is not None:
            self._payload = PlayoutDelay(0, BROWSER_DEFAULT_MAX_MS).payload()

    def set(self, values: Any) -> tuple[int, bytes]:
        packed = super().set(values)
        if self._payload is None:
            return packed
        extensions = unpack_header_extensions(*packed) if packed[0] else []
        return pack_header_extensions([*extensions, (self.extension_id, self._payload)])


def negotiate(transceiver: Any, offer_sdp: str, delay: PlayoutDelay | None) -> PlayoutHint | None:
    """After ``setRemoteDescription``: answer the offered extension and install the hint on
    the transceiver's sender. None when the viewer did not offer it (aiortc peers)."""
    extension_id = offered_id(offer_sdp)
    if extension_id is None:
        return None
    extensions = transceiver._headerExtensions
    if not any(e.uri == URI for e in extensions):
        extensions.append(RTCRtpHeaderExtensionParameters(id=extension_id, uri=URI))
    hint = PlayoutHint(extension_id, delay)
    transceiver.sender._RTCRtpSender__rtp_header_extensions_map = hint
    return hint
