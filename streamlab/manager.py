"""Stream states and the table of allowed transitions between them."""

from __future__ import annotations

import threading
from enum import StrEnum

import structlog

from streamlab.errors import StateTransitionError
from streamlab.events import EventBus, StateChanged

log = structlog.get_logger("streamlab.state")


class StreamState(StrEnum):
    INITIALIZING = "initializing"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    ERROR = "error"
    STOPPED = "stopped"


S = StreamState

TRANSITIONS: dict[StreamState, frozenset[StreamState]] = {
    S.INITIALIZING: frozenset({S.CONNECTING, S.STOPPED, S.ERROR}),
    S.CONNECTING: frozenset({S.STREAMING, S.RECONNECTING, S.ERROR, S.STOPPED}),
    S.STREAMING: frozenset({S.RECONNECTING, S.ERROR, S.STOPPED}),
    S.RECONNECTING: frozenset({S.CONNECTING, S.ERROR, S.STOPPED}),
    S.ERROR: frozenset({S.CONNECTING, S.STOPPED}),
    S.STOPPED: frozenset({S.CONNECTING}),
}
"""For each state, the states it may move to. Anything else raises StateTransitionError."""


class StreamStateMachine:
    """The validated state of one stream; each transition is logged and emitted as an event."""

    def __init__(self, stream: str, bus: EventBus | None = None) -> None:
        self.stream = stream
        self.bus = bus or EventBus()
        self._state = StreamState.INITIALIZING
        self._lock = threading.Lock()
        self.history: list[StreamState] = [self._state]

    @property
    def state(self) -> StreamState:
        return self._state

    def can(self, new: StreamState) -> bool:
        return new in TRANSITIONS[self._state]

    def to(self, new: StreamState, reason: str = "") -> None:
        """Move to ``new``; raises StateTransitionError when the table forbids it."""
        with self._lock:
            old = self._state
            if new not in TRANSITIONS[old]:
                raise StateTransitionError(f"stream {self.stream!r}: cannot go from {old} to {new}")
            self._state = new
            self.history.append(new)
        log.info("state_changed", stream=self.stream, old=str(old), new=str(new), reason=reason)
        self.bus.emit(StateChanged(self.stream, str(old), str(new), reason))

    def to_if_allowed(self, new: StreamState, reason: str = "") -> bool:
        """Move to ``new`` if allowed (and not already there); returns whether it moved."""
        with self._lock:
            allowed = new in TRANSITIONS[self._state]
        if allowed:
            self.to(new, reason)
        return allowed
