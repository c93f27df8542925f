"""The contract between the pipeline and whatever consumes its output frames."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from streamlab.frame import Frame


@runtime_checkable
class FrameSink(Protocol):
    """Receives every outgoing frame on the event loop. ``offer`` must never block:
    a sink keeps its own bounded queue and counts what it drops."""

    def offer(self, frame: Frame) -> None: ...

    def close(self) -> None: ...
