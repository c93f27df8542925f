"""Prometheus figures of every stream's audio, read when ``/metrics`` is scraped."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

COUNTERS = (
    ("packets_in", "packets", "Audio packets received from the camera"),
    ("packets_passed", "passed_packets", "Camera audio packets passed through untouched"),
    ("opus_packets", "opus_packets", "Opus packets made by the stream's transcoder"),
)
DROPS = (("transcoder_drops", "transcoder"), ("viewer_drops", "viewer"))


class AudioCollector(Collector):
    """``streamlab_audio_*{stream}``; ``audios()`` yields ``(stream, StreamAudio)`` pairs.
    The level gauge is left out while a stream's level is unknown (``level_dbov`` None)."""

    def __init__(self, audios: Callable[[], Iterable[tuple[str, Any]]]) -> None:
        self.audios = audios

    def collect(self) -> Iterator[Metric]:
        counters = {key: CounterMetricFamily(f"streamlab_audio_{name}", text, labels=["stream"])
                    for key, name, text in COUNTERS}  # fmt: skip
        drops = CounterMetricFamily("streamlab_audio_dropped_packets",
                                    "Audio packets dropped by a full queue, by place",
                                    labels=["stream", "place"])  # fmt: skip
        level = GaugeMetricFamily("streamlab_audio_level_dbov",
                                  "The camera's audio level over the last 0.5 s (dBov)",
                                  labels=["stream"])  # fmt: skip
        viewers = GaugeMetricFamily("streamlab_audio_viewers", "Viewers getting audio",
                                    labels=["stream", "codec"])  # fmt: skip
        for stream, audio in self.audios():
            stats = audio.stats()
            for key, family in counters.items():
                family.add_metric([stream], stats[key])
            for key, place in DROPS:
                drops.add_metric([stream, place], stats[key])
            if stats["level_dbov"] is not None:
                level.add_metric([stream], stats["level_dbov"])
            for codec, count in stats["viewers"].items():
                viewers.add_metric([stream, codec], count)
        yield from counters.values()
        yield from (drops, level, viewers)
