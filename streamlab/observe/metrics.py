"""Prometheus metrics from pipeline events: an observer, not a stage.

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` units) with a
``stream`` label; Frigate-style ``camera_fps``/``process_fps``/``skipped_fps``/
``detection_fps`` gauges are computed over a sliding window when scraped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streamlab.events import (
    AnalysisCompleted,
    AnalysisSkipped,
    Event,
    EventBus,
    FrameCaptured,
    FrameDelivered,
    FrameDropped,
    LinkProbed,
    QualityChanged,
    Reconnecting,
    Stalled,
    StateChanged,
)
from streamlab.manager import StreamState
from streamlab.observe.rates import RateMeter

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Rates(Collector):
    def __init__(self, observer: MetricsObserver) -> None:
        self.observer = observer

    def collect(self):
        families = {
            name: GaugeMetricFamily(f"streamlab_{name}", help_text, labels=["stream"])
            for name, help_text in (
                ("camera_fps", "Frames per second arriving from the camera"),
                ("process_fps", "Frames per second leaving the pipeline"),
                ("skipped_fps", "Frames per second passed on without analysis"),
                ("detection_fps", "Analyses per second completed"),
            )
        }
        for stream, meters in self.observer.rate_meters().items():
            for name, meter in meters.items():
                families[name].add_metric([stream], round(meter.rate(), 3))
        yield from families.values()


class MetricsObserver:
    """Subscribes to one or more event buses and keeps Prometheus metrics for them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames_captured = Counter("streamlab_frames_captured", "Frames from the source",
                                       ["stream"], registry=r)  # fmt: skip
        self.frames_delivered = Counter(
            "streamlab_frames_delivered", "Frames that left the pipeline", ["stream"], registry=r
        )
        self.frames_dropped = Counter("streamlab_frames_dropped", "Frames dropped",
                                      ["stream", "where", "reason"], registry=r)  # fmt: skip
        self.analysis_skipped = Counter("streamlab_analysis_skipped",
                                        "Frames passed on without analysis",
                                        ["stream", "reason"], registry=r)  # fmt: skip
        self.reconnects = Counter("streamlab_reconnects", "Source reconnect attempts",
                                  ["stream"], registry=r)  # fmt: skip
        self.stalls = Counter("streamlab_stalls", "Source stalls", ["stream"], registry=r)
        self.quality_changes = Counter("streamlab_quality_changes", "Quality level changes",
                                       ["stream"], registry=r)  # fmt: skip
        self.link_probes = Counter("streamlab_link_probes", "Probes of viewers' links",
                                   ["stream", "kind", "outcome"], registry=r)  # fmt: skip
        self.detections = Counter("streamlab_detections", "Objects detected",
                                  ["stream", "label"], registry=r)  # fmt: skip
        self.latency = Histogram("streamlab_pipeline_latency_seconds",
                                 "Capture to pipeline output", ["stream"],
                                 buckets=STAGE_BUCKETS, registry=r)  # fmt: skip
        self.stage = Histogram("streamlab_stage_seconds", "Capture to entering a stage",
                               ["stream", "stage"], buckets=STAGE_BUCKETS, registry=r)  # fmt: skip
        self.detector = Histogram(
            "streamlab_detector_seconds", "Time per detector run", ["stream", "detector"],
            buckets=STAGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.lag_frames = Gauge("streamlab_analysis_lag_frames",
                                "Frames between a frame and the result it carries",
                                ["stream"], registry=r)  # fmt: skip
        self.lag_seconds = Gauge("streamlab_analysis_lag_seconds",
                                 "Capture-time gap between a frame and its result",
                                 ["stream"], registry=r)  # fmt: skip
        self.state = Gauge("streamlab_stream_state", "1 for the stream's current state",
                           ["stream", "state"], registry=r)  # fmt: skip
        self._meters: dict[str, dict[str, RateMeter]] = {}
        self._lock = threading.Lock()
        r.register(_Rates(self))

    def rate_meters(self) -> dict[str, dict[str, RateMeter]]:
        with self._lock:
            return {k: dict(v) for k, v in self._meters.items()}

    def _meter(self, stream: str, name: str) -> RateMeter:
        with self._lock:
            meters = self._meters.setdefault(
                stream,
                {n: RateMeter() for n in ("camera_fps", "process_fps", "skipped_fps",
                                          "detection_fps")},
            )  # fmt: skip
            return meters[name]

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Observe ``bus``; returns a function that stops observing it."""
        return bus.subscribe(self.observe)

    def observe(self, event: Event) -> None:
        stream = event.stream
        if isinstance(event, FrameCaptured):
            self.frames_captured.labels(stream).inc()
            self._meter(stream, "camera_fps").tick(event.at)
        elif isinstance(event, FrameDelivered):
            self.frames_delivered.labels(stream).inc()
            self._meter(stream, "process_fps").tick(event.at)
            self.latency.labels(stream).observe(max(event.latency_s, 0.0))
            for stage, seconds in event.stages.items():
                self.stage.labels(stream, stage).observe(max(seconds, 0.0))
            if event.analysis_lag_frames is not None:
                self.lag_frames.labels(stream).set(event.analysis_lag_frames)
            if event.analysis_lag_s is not None:
                self.lag_seconds.labels(stream).set(event.analysis_lag_s)
        elif isinstance(event, FrameDropped):
            self.frames_dropped.labels(stream, event.where, event.reason).inc()
        elif isinstance(event, AnalysisSkipped):
            self.analysis_skipped.labels(stream, event.reason).inc()
            self._meter(stream, "skipped_fps").tick(event.at)
        elif isinstance(event, AnalysisCompleted):
            self._meter(stream, "detection_fps").tick(event.at)
            for detector, seconds in event.detector_s.items():
                self.detector.labels(stream, detector).observe(seconds)
            for label, count in event.detections.items():
                self.detections.labels(stream, label).inc(count)
        elif isinstance(event, Reconnecting):
            self.reconnects.labels(stream).inc()
        elif isinstance(event, Stalled):
            self.stalls.labels(stream).inc()
        elif isinstance(event, QualityChanged):
            self.quality_changes.labels(stream).inc()
        elif isinstance(event, LinkProbed):
            self.link_probes.labels(stream, event.kind, event.outcome).inc()
        elif isinstance(event, StateChanged):
            for state in StreamState:
                self.state.labels(stream, str(state)).set(1 if state == event.new else 0)

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry).decode()
