"""streamlab: a lab for real-time video pipelines — RTSP in, OpenCV analysis, WebRTC out.

Everything public is here: ``import streamlab as sl``.
"""

from streamlab.clock import now, now_ms
from streamlab.config import StreamingConfig, load_config
from streamlab.errors import (
    BufferClosedError,
    CircuitOpenError,
    ConfigError,
    FrameCodeError,
    NegotiationError,
    SourceError,
    SourceTimeoutError,
    StateTransitionError,
    StreamlabError,
    UnknownStrategyError,
)
from streamlab.events import EventBus
from streamlab.frame import Frame
from streamlab.manager import TRANSITIONS, StreamState, StreamStateMachine
from streamlab.registry import Registry, Spec
from streamlab.sources.base import Source, SourceStats, Subscription
from streamlab.strategies.buffering import BufferPolicy, FrameBuffer, buffering

# --- sources (framecode, synthetic, file, rtsp, pool) ---------------------------------

# --- pipeline, analysis, skipping, observability --------------------------------------

# --- webrtc, quality, codec, server ---------------------------------------------------

__version__ = "0.1.0"

__all__ = [
    "TRANSITIONS",
    "BufferClosedError",
    "BufferPolicy",
    "CircuitOpenError",
    "ConfigError",
    "EventBus",
    "Frame",
    "FrameBuffer",
    "FrameCodeError",
    "NegotiationError",
    "Registry",
    "Source",
    "SourceError",
    "SourceStats",
    "SourceTimeoutError",
    "Spec",
    "StateTransitionError",
    "StreamState",
    "StreamStateMachine",
    "StreamingConfig",
    "StreamlabError",
    "Subscription",
    "UnknownStrategyError",
    "buffering",
    "load_config",
    "now",
    "now_ms",
]
