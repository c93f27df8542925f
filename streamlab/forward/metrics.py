"""Prometheus figures of every forward, read when ``/metrics`` is scraped."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

STATES = ("connecting", "forwarding", "retrying", "stopped")
COUNTERS = (
    ("packets", "packets", "RTP packets sent to the Janus mountpoint"),
    ("bytes", "bytes", "RTP payload bytes sent to the Janus mountpoint"),
    ("plis", "keyframe_requests", "Keyframe requests (PLI/FIR) received from Janus"),
    ("data_messages", "data_messages", "Analysis messages sent to the mountpoint's data port"),
    ("restarts", "restarts", "Times the mountpoint was made again (Janus restarted)"),
)


class ForwardCollector(Collector):
    """``streamlab_forward_*{stream, target, mountpoint}``; ``forwards()`` yields
    ``(stream, JanusForward)`` pairs."""

    def __init__(self, forwards: Callable[[], Iterable[tuple[str, Any]]]) -> None:
        self.forwards = forwards

    def collect(self) -> Iterator[Metric]:
        labels = ["stream", "target", "mountpoint"]
        counters = {key: CounterMetricFamily(f"streamlab_forward_{name}", text, labels=labels)
                    for key, name, text in COUNTERS}  # fmt: skip
        state = GaugeMetricFamily("streamlab_forward_state", "1 for the forward's current state",
                                  labels=[*labels, "state"])  # fmt: skip
        for stream, forward in self.forwards():
            info = forward.info()
            values = [stream, info["target"], str(info["mountpoint"])]
            for key, family in counters.items():
                family.add_metric(values, info[key])
            for name in STATES:
                state.add_metric([*values, name], float(info["state"] == name))
        yield from counters.values()
        yield state
