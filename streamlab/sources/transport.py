"""RTSP lower transport: ``auto`` tries TCP, then UDP when the camera refuses TCP.

A camera that refuses a transport answers SETUP with ``461 Unsupported Transport``, which
FFmpeg reports as ``EPROTONOSUPPORT``. ``auto`` switches to the other transport at once
after such a refusal, and back to TCP when UDP connected but no packet ever came (a
firewall or NAT that drops UDP). One switch per failure: if the other transport fails too,
the normal backoff applies before the next try.
"""

from __future__ import annotations

import errno
from typing import Literal

Transport = Literal["tcp", "udp"]


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is a camera refusing the requested lower transport (461)."""
    if getattr(exc, "errno", None) == errno.EPROTONOSUPPORT:
        return True
    # the reason only: str(exc) ends with the URL, and a camera on port 34461 is no refusal
    reason = str(getattr(exc, "strerror", None) or exc).lower()
    return "protocol not supported" in reason or "461 unsupported" in reason


class TransportChooser:
    """Which transport the next connect uses; ``setting`` is ``auto``, ``tcp`` or ``udp``."""

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self.current: Transport = "udp" if setting == "udp" else "tcp"
        self.switches = 0
        self._just_switched = False

    @property
    def auto(self) -> bool:
        return self.setting == "auto"

    def connected(self) -> None:
        """A connect on ``current`` delivered a frame."""
        self._just_switched = False

    def after_failure(self, *, refused: bool, silent_udp: bool) -> bool:
        """Record a failed connect; True when the next connect should follow at once on the
        other transport (``refused``: 461; ``silent_udp``: UDP set up but nothing came)."""
        if not self.auto or self._just_switched or not (refused or silent_udp):
            self._just_switched = False
            return False
        if silent_udp and self.current != "udp":
            return False
        self.current = "udp" if self.current == "tcp" else "tcp"
        self.switches += 1
        self._just_switched = True
        return True
