"""Rung decisions: the ladder for the source, and each viewer's rung from its strategy.

A viewer switches at a keyframe of the new rung (``pending`` until then); a step up while
the link is full first pauses the viewer for ``DRAIN_S`` so the new rung's keyframe goes
into an empty queue.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from streamlab.delivery import passthrough
from streamlab.events import QualityChanged
from streamlab.strategies.quality import Load, ladder_for

if TYPE_CHECKING:
    from streamlab.delivery.stream import StreamDelivery
    from streamlab.delivery.viewer import Viewer

log = structlog.get_logger("streamlab.delivery")

DRAIN_S = 0.3  # pause before a loss-driven step down (the link's queue drains)
MAX_FACTOR = 4.0


def set_ladder(delivery: StreamDelivery, size: tuple[int, int]) -> None:
    """A new ladder for a source of ``size``: every encoder restarts, every viewer re-decides."""
    if delivery.ladder is not None:
        log.info("ladder_reset", stream=delivery.stream, old=delivery._source_size, new=size)
    delivery._source_size = size
    delivery.ladder = ladder_for(size[0], size[1], delivery.fps)
    for encoder in delivery.encoders.values():
        delivery._retire(encoder)
    delivery.encoders.clear()
    top = delivery.ladder[0].bitrate
    for viewer in delivery.viewers.values():
        viewer.rung = viewer.pending = None
        viewer.estimator.max_bps = int(top * MAX_FACTOR)
        if viewer.prober is not None:
            viewer.prober.max_bps = top * MAX_FACTOR
        if not viewer.estimator.reports:
            viewer.estimator.target_bps = delivery.start_bps


def load_of(delivery: StreamDelivery, viewer: Viewer, at: float) -> Load:
    """What the viewer's quality strategy sees: encode time, estimate, loss, overuse."""
    probed = viewer.prober is not None
    if viewer.rung is None or delivery.ladder is None:  # the start estimate
        return Load(bandwidth_bps=viewer.estimator.estimate_bps, at=at, probed=probed)
    encoder = delivery.encoders.get(delivery._key(viewer, viewer.rung))
    rung = delivery.ladder[viewer.rung]
    estimator = viewer.estimator
    known = estimator.known
    return Load(
        encode_s=encoder.encoder.last_encode_s if encoder is not None else 0.0,
        budget_s=1.0 / rung.fps,
        bandwidth_bps=estimator.estimate_bps if known else None,
        loss=estimator.loss,
        at=at,
        overused=estimator.overused(at),
        probed=probed,
    )


def decide(delivery: StreamDelivery, viewer: Viewer, at: float) -> None:
    """Ask the viewer's strategy for a rung; start it there, or make the change pending."""
    ladder = delivery.ladder
    assert ladder is not None
    current = viewer.pending if viewer.pending is not None else viewer.rung
    load = load_of(delivery, viewer, at)
    chosen = max(0, min(len(ladder) - 1, viewer.strategy.decide(ladder, current, load)))
    if viewer.rung is None:
        viewer.rung = chosen
        viewer.track.needs_keyframe = True
        if delivery._key(viewer, chosen) == passthrough.PASSTHROUGH:
            passthrough.join(delivery, viewer)
        else:
            delivery._request_keyframe(delivery._key(viewer, chosen))
        return
    if current is None or chosen == current:
        return
    viewer.pending = None if chosen == viewer.rung else chosen
    if viewer.pending is not None and chosen > current and viewer.estimator.loss_seen(at):
        # The link is full: send nothing for a moment so the new rung's keyframe goes
        # into an empty queue instead of being dropped behind the old rung's packets.
        viewer.hold_until = at + DRAIN_S
        asyncio.get_running_loop().call_later(DRAIN_S, delivery._viewer_wants_keyframe, viewer)
    elif viewer.pending is not None:
        delivery._request_keyframe(delivery._key(viewer, chosen))
    viewer.quality_changes += 1
    old, new = ladder[current].name, ladder[chosen].name
    delivery.bus.emit(QualityChanged(delivery.stream, old, new, viewer.strategy.name,
                                     viewer=viewer.id))  # fmt: skip
    estimator = viewer.estimator
    log.info("quality_changed", stream=delivery.stream, viewer=viewer.id, old=old, new=new,
             estimate_bps=estimator.estimate_bps, loss=estimator.loss)  # fmt: skip
