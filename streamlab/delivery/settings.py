"""Live settings of a delivery: per stream (``SettingsChanged`` events, whoever made them)
and per viewer (``update_viewer``: a spec, or None to follow the stream again)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamlab.delivery.gop import GopCache
from streamlab.delivery.messages import tell
from streamlab.delivery.network import NetworkSpec
from streamlab.delivery.playout import PlayoutDelay
from streamlab.delivery.playout import normalized as normalized_playout
from streamlab.errors import ConfigError
from streamlab.events import SettingsChanged
from streamlab.strategies.codec import codecs
from streamlab.strategies.quality import quality

if TYPE_CHECKING:
    from streamlab.delivery.stream import StreamDelivery
    from streamlab.delivery.viewer import Viewer

VIEWER_SETTINGS = ("network", "quality", "playout_delay")


def update_viewer(delivery: StreamDelivery, viewer: Viewer, **settings: str | None) -> None:
    """Apply per-viewer settings; ConfigError for a bad one, and then nothing changes."""
    unknown = sorted(set(settings) - set(VIEWER_SETTINGS))
    if unknown:
        raise ConfigError(f"unknown viewer setting {unknown[0]!r}; use "
                          + ", ".join(VIEWER_SETTINGS))  # fmt: skip
    for name, value in settings.items():
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"viewer setting {name!r} must be a string or null")
    network = settings.get("network")
    spec = NetworkSpec.parse(network) if isinstance(network, str) else None
    wanted = settings.get("quality")
    strategy = quality.create(quality.validate(wanted)) if isinstance(wanted, str) else None
    playout = settings.get("playout_delay")
    playout = normalized_playout(playout) if isinstance(playout, str) else None
    if "network" in settings:
        viewer.network_override = spec
        if viewer.link is not None:
            viewer.link.update(network_of(delivery, viewer))
    if "quality" in settings:
        viewer.quality_override = wanted
        viewer.strategy = strategy or quality.create(delivery.quality_spec)
    if "playout_delay" in settings:
        viewer.playout_override = playout
        tell_playout(delivery, viewer)


def network_of(delivery: StreamDelivery, viewer: Viewer) -> NetworkSpec:
    """The emulated link of ``viewer``: its own, else the stream's."""
    return viewer.network_override if viewer.network_override is not None else delivery.network


def playout_of(delivery: StreamDelivery, viewer: Viewer) -> PlayoutDelay | None:
    """The playout-delay range ``viewer`` is to be told (None: no hint); with ``lip_sync``
    a viewer that gets audio may be held up to ``LIP_SYNC_MAX_MS`` to meet the sound."""
    delay = PlayoutDelay.parse(viewer.playout_override or delivery.playout_spec)
    if delay is not None and delivery.lip_sync and viewer.id in delivery.audio.tracks:
        return delay.allowing_sync()
    return delay


def tell_playout(delivery: StreamDelivery, viewer: Viewer) -> None:
    if viewer.playout is not None:
        viewer.playout.delay = playout_of(delivery, viewer)


def on_settings(delivery: StreamDelivery, event: SettingsChanged) -> None:
    """A stream's settings changed: apply what delivery uses, at once."""
    changes: dict[str, Any] = event.changes
    if "quality" in changes:
        delivery.quality_spec = str(changes["quality"])
        for viewer in delivery.viewers.values():
            if viewer.quality_override is None:
                viewer.strategy = quality.create(delivery.quality_spec)
    if "network" in changes:
        delivery.network = NetworkSpec.parse(str(changes["network"]))
        for viewer in delivery.viewers.values():
            if viewer.network_override is None and viewer.link is not None:
                viewer.link.update(delivery.network)
    if "start_bitrate" in changes:
        delivery.start_bps = int(changes["start_bitrate"])  # for viewers who join from now
    if "overlay" in changes:
        delivery.overlay = bool(changes["overlay"])
    if "rtp_clock" in changes:
        delivery.clock.mode = changes["rtp_clock"]  # each path re-anchors on its next frame
    if "playout_delay" in changes or "lip_sync" in changes:
        delivery.playout_spec = str(changes.get("playout_delay", delivery.playout_spec))
        delivery.lip_sync = bool(changes.get("lip_sync", delivery.lip_sync))
        for viewer in delivery.viewers.values():
            tell_playout(delivery, viewer)
    if "audio" in changes:
        delivery.audio.set_mode(str(changes["audio"]))
    if "passthrough_join" in changes:
        delivery.join = changes["passthrough_join"]
        delivery.gop = GopCache()
    if "codec" in changes:
        delivery.preference = codecs.create(str(changes["codec"]))
        mime = delivery.preference.mime.lower()
        for viewer in delivery.viewers.values():
            if viewer.codec.name != delivery.preference.name and mime in viewer.offered:
                reason = f"codec changed to {delivery.preference.name}"
                tell(viewer, {"type": "reconnect", "reason": reason})
