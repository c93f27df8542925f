"""streamlab: a lab for real-time video pipelines — RTSP in, OpenCV analysis, WebRTC out.

Everything public is here: ``import streamlab as sl``. Importing it loads the core only
(sources, strategies, pipeline, analysis, observation); the WebRTC server and client, the
test camera, the notebook lab and the benchmark reports load on first use, and a missing
optional package is one line naming the extra to install (``MissingExtraError``).
"""

import os as _os
from typing import TYPE_CHECKING, Any

import structlog as _structlog

from streamlab.analysis.detectors import Detector, detectors, register_detector
from streamlab.analysis.engine import AnalysisEngine
from streamlab.clock import now, now_ms
from streamlab.config import StreamingConfig, load_config
from streamlab.detection import AnalysisResult, Detection
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
from streamlab.extras import MissingExtraError
from streamlab.frame import Frame
from streamlab.framecode import FrameCode
from streamlab.framecode import burn as burn_framecode
from streamlab.framecode import read as read_framecode
from streamlab.manager import TRANSITIONS, StreamState, StreamStateMachine
from streamlab.observe.health import Health, HealthObserver, HealthReport
from streamlab.observe.logs import configure_logging
from streamlab.observe.metrics import MetricsObserver
from streamlab.pipeline import FrameTap, Pipeline
from streamlab.probe import ProbeReport, probe
from streamlab.registry import Registry, Spec
from streamlab.sinks import FrameSink
from streamlab.sources.base import Source, SourceStats, Subscription
from streamlab.sources.file import FileSource
from streamlab.sources.open import open_source
from streamlab.sources.pool import SourcePool
from streamlab.sources.rtsp import RtspSource
from streamlab.sources.synthetic import SyntheticScene, SyntheticSource
from streamlab.sources.url import redact
from streamlab.strategies.buffering import BufferPolicy, FrameBuffer, buffering
from streamlab.strategies.codec import codecs
from streamlab.strategies.quality import LADDER, Level, quality
from streamlab.strategies.skipping import AnalysisState, SkipStrategy, skipping

if TYPE_CHECKING:
    from streamlab import lab
    from streamlab.bench.report import load_results, write_report
    from streamlab.camera.launcher import TestCamera
    from streamlab.lab.panel import ControlPanel
    from streamlab.lab.preview import LivePreview
    from streamlab.lab.recorder import EventRecorder
    from streamlab.webrtc.client import WhepClient
    from streamlab.webrtc.server import Server

__version__ = "0.1.0"

# name -> (module, attribute or "" for the module itself, what to call it, its extra)
_LAZY: dict[str, tuple[str, str, str, str | None]] = {
    "Server": ("streamlab.webrtc.server", "Server", "sl.Server", None),
    "WhepClient": ("streamlab.webrtc.client", "WhepClient", "sl.WhepClient", None),
    "TestCamera": ("streamlab.camera.launcher", "TestCamera", "sl.TestCamera", None),
    "lab": ("streamlab.lab", "", "sl.lab", "notebook"),
    "ControlPanel": ("streamlab.lab.panel", "ControlPanel", "sl.ControlPanel", "notebook"),
    "LivePreview": ("streamlab.lab.preview", "LivePreview", "sl.LivePreview", "notebook"),
    "EventRecorder": ("streamlab.lab.recorder", "EventRecorder", "sl.EventRecorder", "notebook"),
    "load_results": ("streamlab.bench.report", "load_results", "sl.load_results", "bench"),
    "write_report": ("streamlab.bench.report", "write_report", "sl.write_report", "bench"),
}


def __getattr__(name: str) -> Any:
    """Load a heavy layer on first use (PEP 562)."""
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'streamlab' has no attribute {name!r}")
    from streamlab.extras import load

    module_name, attribute, feature, extra = target
    module = load(module_name, feature, extra)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if not _structlog.is_configured():  # quiet by default in notebooks; configure_logging() to change
    _level = _os.environ.get("STREAMING_LOG_LEVEL", "warning").lower()
    configure_logging(_level if _level in ("debug", "info", "warning", "error") else "warning")

__all__ = [
    "LADDER",
    "TRANSITIONS",
    "AnalysisEngine",
    "AnalysisResult",
    "AnalysisState",
    "BufferClosedError",
    "BufferPolicy",
    "CircuitOpenError",
    "ConfigError",
    "ControlPanel",
    "Detection",
    "Detector",
    "EventBus",
    "EventRecorder",
    "FileSource",
    "Frame",
    "FrameBuffer",
    "FrameCode",
    "FrameCodeError",
    "FrameSink",
    "FrameTap",
    "Health",
    "HealthObserver",
    "HealthReport",
    "Level",
    "LivePreview",
    "MetricsObserver",
    "MissingExtraError",
    "NegotiationError",
    "Pipeline",
    "ProbeReport",
    "Registry",
    "RtspSource",
    "Server",
    "SkipStrategy",
    "Source",
    "SourceError",
    "SourcePool",
    "SourceStats",
    "SourceTimeoutError",
    "Spec",
    "StateTransitionError",
    "StreamState",
    "StreamStateMachine",
    "StreamingConfig",
    "StreamlabError",
    "Subscription",
    "SyntheticScene",
    "SyntheticSource",
    "TestCamera",
    "UnknownStrategyError",
    "WhepClient",
    "buffering",
    "burn_framecode",
    "codecs",
    "configure_logging",
    "detectors",
    "lab",
    "load_config",
    "load_results",
    "now",
    "now_ms",
    "open_source",
    "probe",
    "quality",
    "read_framecode",
    "redact",
    "register_detector",
    "skipping",
    "write_report",
]
