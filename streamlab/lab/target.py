"""What a lab object watches or tunes: a pipeline, or one stream of a (lab) server.

``resolve(target)`` accepts a ``Pipeline``, a ``LabServer`` (its default stream), a
``(LabServer | Server, name)`` pair, or a ``Target``; every lab object goes through it, so
they all agree on the settings as applied, on how a change is made and on "stopped".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamlab.config import StreamingConfig
from streamlab.pipeline import Pipeline

if TYPE_CHECKING:
    from streamlab.lab.serve import LabServer
    from streamlab.webrtc.server import Server

# every setting a lab control may change while the stream runs (those this config knows)
LIVE_FIELDS: tuple[str, ...] = tuple(
    name
    for name in (
        "buffering", "skipping", "analyze", "target_fps", "frame_skip_interval",
        "analysis_frame_interval", "detection_frame_interval", "analysis_lag_budget_ms",
        "quality", "codec", "network", "overlay", "stage_delay_ms", "playout_delay",
        "rtp_clock", "passthrough_join", "audio", "lip_sync",
    )
    if name in StreamingConfig.model_fields
)  # fmt: skip


@dataclass(eq=False)
class Target:
    """One stream to watch: its pipeline, and the server (and lab server) serving it."""

    pipeline: Pipeline
    server: Server | None = None
    name: str | None = None
    lab: LabServer | None = None

    @property
    def label(self) -> str:
        return self.name or self.pipeline.name

    @property
    def running(self) -> bool:
        """False once the pipeline or the server serving it has stopped."""
        if self.lab is not None and not self.lab.running:
            return False
        if self.server is not None and self.name not in self.server.streams:
            return False
        return self.pipeline.running

    def settings(self) -> dict[str, Any]:
        """The live settings as applied right now."""
        stream = self.server.streams.get(self.label) if self.server is not None else None
        applied = dict(stream.settings()) if stream is not None else {}
        config = self.pipeline.config
        for name in LIVE_FIELDS:
            applied.setdefault(name, getattr(config, name))
        return applied

    async def update(self, **settings: Any) -> dict[str, Any]:
        """Validate and apply ``settings``; returns the settings as applied afterwards.

        Raises ConfigError (nothing changed) for a bad value.
        """
        if self.server is not None:
            await self.server.update(self.label, **settings)
        else:
            await self.pipeline.update(**settings)
        return self.settings()

    def stream_info(self) -> dict[str, Any] | None:
        """The server's view of this stream (``GET /api/streams`` entry), if served."""
        if self.server is None:
            return None
        stream = self.server.streams.get(self.label)
        return None if stream is None else stream.info()


def resolve(target: Any, name: str | None = None) -> Target:
    """A ``Target`` for a pipeline, a lab server, a server + stream name, or a pair of those."""
    from streamlab.lab.serve import LabServer
    from streamlab.webrtc.server import Server

    if isinstance(target, Target):
        return target
    if isinstance(target, tuple) and len(target) == 2:
        target, name = target
    if isinstance(target, Pipeline):
        return Target(target)
    lab = target if isinstance(target, LabServer) else None
    server = target.server if lab is not None else target
    if isinstance(server, Server):
        if name is None:
            if len(server.streams) != 1:
                raise ValueError(f"name one of the served streams: {sorted(server.streams)}")
            name = next(iter(server.streams))
        if name not in server.streams:
            raise KeyError(f"no stream named {name!r}; served: {sorted(server.streams)}")
        return Target(server.streams[name].pipeline, server, name, lab)
    raise TypeError(
        "expected a Pipeline, a LabServer, or (LabServer | Server, stream name); "
        f"got {type(target).__name__}"
    )
