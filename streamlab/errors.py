"""One error root for streamlab; every leaf also subclasses the matching builtin.

Catch ``StreamlabError`` for anything streamlab raises on purpose, or the builtin
(``ConnectionError``, ``ValueError``, ...) when the caller already handles those.
"""

from __future__ import annotations


class StreamlabError(Exception):
    """Root of every error streamlab raises on purpose."""


class ConfigError(StreamlabError, ValueError):
    """A setting is missing, malformed or out of range; the message names it."""


class UnknownStrategyError(ConfigError, LookupError):
    """A strategy name is not registered in its family."""


class SourceError(StreamlabError, ConnectionError):
    """A source cannot be opened or read (bad URL, refused, unreachable, broken stream)."""


class SourceTimeoutError(SourceError, TimeoutError):
    """A source did not answer within its timeout."""


class CircuitOpenError(SourceError):
    """The source's circuit breaker is open: too many failed connects in a row."""


class StateTransitionError(StreamlabError, RuntimeError):
    """A stream was asked to move between two states the transition table forbids."""


class FrameCodeError(StreamlabError, ValueError):
    """No valid frame code could be read from an image (absent, damaged or misread)."""


class NegotiationError(StreamlabError, ValueError):
    """A WebRTC offer cannot be answered (bad SDP, no codec in common)."""


class BufferClosedError(StreamlabError, EOFError):
    """A frame buffer was closed while a consumer waited on it."""


__all__ = [
    "BufferClosedError",
    "CircuitOpenError",
    "ConfigError",
    "FrameCodeError",
    "NegotiationError",
    "SourceError",
    "SourceTimeoutError",
    "StateTransitionError",
    "StreamlabError",
    "UnknownStrategyError",
]
