"""Forwards for a server's streams, from a spec string."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamlab.delivery.passthrough import gives_units
from streamlab.errors import ConfigError
from streamlab.forward.janus import JanusForward
from streamlab.forward.spec import ForwardSpec


def make_forwards(spec: str | ForwardSpec, streams: Mapping[str, Any],
                  stream: str | None = None) -> list[JanusForward]:  # fmt: skip
    """One forward per stream of ``streams`` (``name -> server Stream``), or for ``stream``
    only. ConfigError for a bad spec, an unknown stream, a taken mountpoint id or a
    passthrough forward of a source without the camera's units."""
    parsed = spec if isinstance(spec, ForwardSpec) else ForwardSpec.parse(spec)
    if stream is not None and stream not in streams:
        raise ConfigError(f"no stream named {stream!r} to forward")
    if not streams:
        raise ConfigError("add a stream before forwarding it")
    taken = {f.mountpoint_id for s in streams.values() for f in s.delivery.forwards}
    made = []
    for index, (name, served) in enumerate(streams.items()):
        if stream is not None and name != stream:
            continue
        if parsed.codec == "passthrough" and not gives_units(served.pipeline.source):
            raise ConfigError("a passthrough forward needs an H.264 RTSP camera source")
        mountpoint = parsed.id_for(name, index)
        if mountpoint in taken:
            raise ConfigError(f"mountpoint {mountpoint} is already forwarded to")
        made.append(JanusForward(parsed, served.delivery, mountpoint))
    for forward in made:
        if forward not in forward.delivery.forwards:
            forward.delivery.forwards.append(forward)
    return made
