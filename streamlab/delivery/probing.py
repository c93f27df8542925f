"""The probing loop of one viewer: paced padding at a probe's rate, verdicts to the estimate.

Runs on the event loop while the viewer is connected and its quality strategy adapts to
bandwidth. Every ``TICK_S`` it tops up what left for the viewer (media, retransmissions,
padding: the link observer counts every byte) to the probe's rate with padding packets,
so the probe is paced in steps of a few milliseconds, never a burst.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from streamlab.clock import now
from streamlab.events import LinkProbed
from streamlab.strategies.quality import Bandwidth
from streamlab.webrtc.padding import send_padding

if TYPE_CHECKING:
    from streamlab.delivery.stream import StreamDelivery
    from streamlab.delivery.viewer import Viewer

log = structlog.get_logger("streamlab.delivery")

TICK_S = 0.005
MIN_TICK_S = 0.001
IDLE_S = 0.1
MAX_BURST_S = 0.02  # padding owed is forgotten beyond this much of the probe's rate
PADDING_PACKET = 1200  # bytes on the wire of a typical padding packet (a media copy)
MAX_PACKETS_PER_TICK = 8


def adapts_to_bandwidth(viewer: Viewer) -> bool:
    return isinstance(viewer.strategy, Bandwidth)


async def run_probes(delivery: StreamDelivery, viewer: Viewer) -> None:
    """Probe ``viewer``'s link until it leaves (cancel the task to stop it sooner)."""
    prober = viewer.prober
    assert prober is not None
    owed = 0.0
    packet_size = float(PADDING_PACKET)
    last_at, last_bytes = now(), viewer.wire_bytes
    while viewer.id in delivery.viewers:
        at = now()
        sent = viewer.wire_bytes - last_bytes
        elapsed = at - last_at
        last_at, last_bytes = at, viewer.wire_bytes
        if not adapts_to_bandwidth(viewer) or viewer.frames_sent == 0:
            await asyncio.sleep(IDLE_S)
            continue
        prober.startup(at)
        _want_next_rung(delivery, viewer, at)
        probe = prober.current
        if probe is not None and viewer.estimator.last_cut_at >= probe.started:
            prober.on_loss(at)
        rate = prober.rate(at, viewer.estimator.estimate_bps)
        verdict = prober.take_verdict()
        if verdict is not None:
            if verdict.estimate_bps is not None:
                viewer.estimator.apply_probe(verdict.estimate_bps, at)
            delivery.bus.emit(LinkProbed(delivery.stream, viewer.id, verdict.kind,
                                         verdict.rate_bps, verdict.outcome,
                                         verdict.estimate_bps))  # fmt: skip
            log.info("link_probed", stream=delivery.stream, viewer=viewer.id,
                     **verdict.to_dict())  # fmt: skip
        if rate is None:
            owed = 0.0
            await asyncio.sleep(IDLE_S)
            continue
        # one packet at a time, evenly spaced: receivers (Chromium) detect a probe from the
        # spacing of its packets
        owed = min(owed + rate / 8 * elapsed - sent, rate / 8 * MAX_BURST_S)
        # as many packets as are owed (a late tick catches up: a pacer's few-ms bursts)
        packets = min(MAX_PACKETS_PER_TICK, int(owed / packet_size + 0.5))
        if packets > 0 and viewer.track.sender is not None:
            padded = await send_padding(viewer.track.sender, packets)  # in the next ``sent``
            if padded:
                packet_size = 0.7 * packet_size + 0.3 * padded / packets
        await asyncio.sleep(min(TICK_S, max(MIN_TICK_S, PADDING_PACKET * 8 / rate)))


def _want_next_rung(delivery: StreamDelivery, viewer: Viewer, at: float) -> None:
    """While the next rung up does not fit the estimate, ask for an ALR probe at its rate."""
    ladder, rung, prober = delivery.ladder, viewer.rung, viewer.prober
    if ladder is None or rung is None or rung == 0 or viewer.pending is not None:
        return
    assert prober is not None
    needed = ladder[rung - 1].bitrate / Bandwidth.HEADROOM
    if viewer.estimator.estimate_bps < needed and not viewer.estimator.loss_seen(at, 3.0):
        prober.want(needed * 1.05, at)
