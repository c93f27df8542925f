"""Probing a viewer's link for capacity with paced padding, after libwebrtc's
``probe_controller.cc``, judged by what the receiver reports back.

At start (``startup``) the link is probed at 3x the start estimate; a probe that passes is
followed by one at twice its rate, up to ``max_bps``.

**With transport-cc feedback** (browsers, and the project's aiortc viewer) each probe is
measured packet by packet (``transport_feedback.py``): it **passed** when the link carried
90 % of its rate, else it is **limited** to what the link carried (the estimate becomes
that, if higher). Such probes are short (a cluster of >= 40 ms, at most 30 ms of queue at the
estimate) and ALR probes repeat every 5 s without backing off. The REMB rules below are for
receivers that send only REMB (a plain aiortc peer). Later, while the next rung
up does not fit the estimate, an ALR probe at that rung's rate runs every
``alr_interval_s`` (doubled after each failure, up to 30 s; 1 s after startup and after a
probe that passed, so a viewer climbs a free link rung by rung). A probe sends padding so that
media + padding leave at the probe's rate; it is short enough that, if the link is only as
fast as the current estimate, the excess fills at most ``QUEUE_BUDGET_S`` of its queue
(0.1 s / (k - 1) for a probe at k x the estimate, within 0.1-0.5 s), so a probe that
fails costs no media. Its verdict comes ``GRACE_S`` after it ends:

- **overuse**: the receiver's REMB fell during the probe (its delay-based estimator saw
  its queue grow); a REMB is capped at 1.5 x what the receiver gets, so only a fall, not a
  low value, says the link is full: the estimate stays where it was;
- **loss**: the estimator cut on loss during the probe: the estimator's own cut stands;
- **limited** (startup probes): the receiver sends REMB, and its highest during the probe
  stayed under 90 %
  of the probe's rate: the link carries about that much (Chromium, in its first 2 s,
  answers the rate it measured on the probe's packets; later its REMB follows what it
  receives up): the estimate becomes that REMB, if higher, and startup probing stops;
- **passed**: a REMB came during the probe or its grace and did not fall: the link carried
  the probe's rate, which becomes the estimate (an ALR probe's: at most 1.5 x that REMB);
- **inconclusive**: no REMB came (aiortc's receiver sends none in its first 3 s unless it
  sees overuse, and then one a second): the estimate stays; a startup probe is tried once
  more, an ALR probe at the next interval. (Passing it without a REMB was tried: a 3x probe
  fits the queue of a 300 kbit/s link, so it "passed" there and the viewer went to 640x360,
  three freezes.)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

STARTUP_FACTORS = (3.0,)  # then 2x each probe that passes: 6x, 12x ...
QUEUE_BUDGET_S = 0.1
MIN_DURATION_S = 0.1
# Measured by transport-cc, a probe needs only a cluster of packets (libwebrtc: >= 5 packets
# over >= 15 ms): short probes put less into a full link's queue.
MEASURED_QUEUE_BUDGET_S = 0.03
MEASURED_MIN_DURATION_S = 0.04
MEASURED_MIN_PACKETS = 10
PROBE_QUEUE_S = 0.5  # a probe's excess may take this long to drain from a full link
MAX_DURATION_S = 0.5
GRACE_S = 1.0
STARTUP_GRACE_S = 1.5  # Chromium's first REMB (its measure of the startup probes) comes late
STARTUP_TRIES = 2  # a startup probe no REMB answered is tried once more
ALR_STEP = 1.0  # an ALR pass raises the estimate past 1.5 x the REMB by this factor (none:
# 1.25 let the estimate creep past an 800 kbit/s link to 960x540 in Chromium, 2 freezes)
REMB_CAP = 1.5  # a receiver's REMB grows to at most 1.5 x what it gets (+10 kbit/s)
REMB_CARRIED = 0.9  # a REMB this close to the probe's rate: the link carried the probe
ALR_INTERVAL_S = 5.0
FIRST_ALR_S = 1.0
MAX_ALR_INTERVAL_S = 30.0
REMB_DROP = 0.97  # a REMB this much below the one before the probe: overuse


@dataclass(slots=True)
class Probe:
    """One probe: padding up to ``rate_bps`` from ``started`` for ``DURATION_S``."""

    rate_bps: float
    started: float
    kind: str
    duration_s: float = MAX_DURATION_S
    remb_before: float | None = None
    remb_min: float | None = None
    remb_max: float | None = None
    estimate_before: float = 0.0
    id: int = 0
    reported: bool = False
    """Transport-cc feedback has covered the probe's packets (``measured_bps`` is final)."""
    measured_bps: float | None = None
    """The rate the link carried the probe at, from transport-cc feedback."""

    @property
    def grace_s(self) -> float:
        return STARTUP_GRACE_S if self.kind == "startup" else GRACE_S

    lossy: bool = False

    @property
    def ends(self) -> float:
        return self.started + self.duration_s


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A probe's verdict; ``estimate_bps`` is None when the probe leaves the estimate alone."""

    at: float
    kind: str
    rate_bps: int
    outcome: str
    estimate_bps: int | None

    def to_dict(self) -> dict[str, object]:
        return {"at": round(self.at, 3), "kind": self.kind, "rate_bps": self.rate_bps,
                "outcome": self.outcome, "estimate_bps": self.estimate_bps}  # fmt: skip


class Prober:
    """Decides when to probe a viewer's link and at what rate; judges each probe."""

    def __init__(self, start_bps: float, max_bps: float) -> None:
        self.start_bps = start_bps
        self.max_bps = max_bps
        self.current: Probe | None = None
        self.planned: list[tuple[float, str]] = []
        self.results: deque[ProbeResult] = deque(maxlen=20)
        self.alr_interval_s = ALR_INTERVAL_S
        self.next_alr_at = float("-inf")
        self.started = False
        self._rtx_lost: int | None = None
        self.startup_tries = 0
        self.last_remb: float | None = None
        self._verdicts: deque[ProbeResult] = deque(maxlen=20)
        self._ids = 0
        self.last_probe_ended = float("-inf")
        self.measured = False
        """The viewer reports each packet's arrival (transport-cc): probes can be short."""

    @property
    def probes(self) -> int:
        return len(self.results)

    def startup(self, at: float) -> None:
        """Plan the startup probes (once)."""
        if self.started:
            return
        self.started = True
        self.planned = [(self.start_bps * f, "startup") for f in STARTUP_FACTORS]
        self.next_alr_at = at + ALR_INTERVAL_S

    def want(self, rate_bps: float, at: float) -> None:
        """The next rung up needs ``rate_bps``: probe for it when an ALR probe is due."""
        if self.current is None and not self.planned and at >= self.next_alr_at:
            self.planned = [(min(rate_bps, self.max_bps), "alr")]

    def on_remb(self, bps: float, at: float) -> None:
        probe = self.current
        if probe is not None and at >= probe.started:
            probe.remb_min = bps if probe.remb_min is None else min(probe.remb_min, bps)
            probe.remb_max = bps if probe.remb_max is None else max(probe.remb_max, bps)
        else:
            self.last_remb = bps

    def on_rtx_lost(self, lost: int, at: float) -> None:
        """The receiver's cumulative loss on the RTX stream: padding lost during a probe
        means the probe overflowed the link's queue (media may not have lost a packet)."""
        previous, self._rtx_lost = self._rtx_lost, lost
        if previous is not None and lost > previous:
            self.on_loss(at)

    def on_loss(self, at: float) -> None:
        """The estimator cut on loss."""
        if self.current is not None and at >= self.current.started:
            self.current.lossy = True

    def rate(self, at: float, estimate_bps: float) -> float | None:
        """The rate media + padding should leave at now (None: no probe, no padding)."""
        probe = self.current
        if probe is None and self.planned:
            rate, kind = self.planned.pop(0)
            rate = min(rate, self.max_bps)
            excess = max(rate / max(estimate_bps, 1.0) - 1.0, 1e-3)
            budget, shortest = ((MEASURED_QUEUE_BUDGET_S, MEASURED_MIN_DURATION_S)
                                if self.measured else (QUEUE_BUDGET_S, MIN_DURATION_S))  # fmt: skip
            if self.measured:  # enough packets for a rate: ~10 of a full-size padding packet
                shortest = max(shortest, MEASURED_MIN_PACKETS * 1200 * 8 / rate)
            duration = min(MAX_DURATION_S, max(shortest, budget / excess))
            self._ids += 1
            probe = self.current = Probe(rate, at, kind, duration, self.last_remb, id=self._ids)
            probe.estimate_before = estimate_bps
        if probe is None:
            return None
        if at < probe.ends:
            return probe.rate_bps
        if at >= probe.ends + probe.grace_s or (probe.reported and at >= probe.ends):
            self._judge(probe, at)
        return None

    def take_verdict(self) -> ProbeResult | None:
        """The verdict of a probe that ended since the last call (None if none)."""
        return self._verdicts.popleft() if self._verdicts else None

    def sending(self, at: float) -> int | None:
        """The id of the probe whose packets leave now (None: no probe is sending)."""
        probe = self.current
        return probe.id if probe is not None and probe.started <= at < probe.ends else None

    def filling(self, at: float) -> bool:
        """Whether a probe fills the link's queue on purpose now, or did within the last
        ``PROBE_QUEUE_S`` (its excess is still draining)."""
        probe = self.current
        if probe is not None and at >= probe.started:
            return True
        return at - self.last_probe_ended < PROBE_QUEUE_S

    def _judge(self, probe: Probe, at: float) -> None:
        self.current = None
        self.last_probe_ended = probe.ends
        rate = probe.rate_bps
        before, during = probe.remb_before, probe.remb_min
        if during is not None:
            self.last_remb = during
        measured = probe.measured_bps
        if probe.reported:  # transport-cc measured what the link carried
            if measured is None:
                outcome, estimate = "inconclusive", None
            elif measured >= REMB_CARRIED * rate:
                outcome, estimate = "passed", rate
            else:
                outcome = "limited"
                estimate = measured if measured > probe.estimate_before else None
        elif before is not None and during is not None and during < REMB_DROP * before:
            outcome, estimate = "overuse", None
        elif probe.lossy:
            outcome, estimate = "loss", None
        elif during is None:
            outcome, estimate = "inconclusive", None
        elif probe.kind == "startup" and (probe.remb_max or 0.0) < REMB_CARRIED * rate:
            carried = probe.remb_max or 0.0
            outcome, estimate = "limited", carried if carried > probe.estimate_before else None
        elif probe.kind == "alr":
            # past its first 2 s a receiver's REMB no longer measures probes, and a short
            # probe may end before its delay detector fires: trust a pass up to what the
            # REMB would allow (1.5 x its incoming rate), so a climb goes step by step
            allowed = min(rate, max(REMB_CAP * (probe.remb_max or 0.0),
                                    ALR_STEP * probe.estimate_before))  # fmt: skip
            outcome, estimate = "passed", allowed if allowed > probe.estimate_before else None
        else:
            outcome, estimate = "passed", rate
        result = ProbeResult(at, probe.kind, int(rate), outcome,
                             None if estimate is None else int(estimate))  # fmt: skip
        self.results.append(result)
        self._verdicts.append(result)
        if outcome == "passed":
            self.alr_interval_s = ALR_INTERVAL_S
            if probe.kind == "startup" and not self.planned and 2 * rate <= self.max_bps:
                self.planned = [(2 * rate, "startup")]
        elif (
            outcome == "inconclusive"
            and probe.kind == "startup"
            and (self.startup_tries < STARTUP_TRIES - 1)
        ):
            self.startup_tries += 1
            self.planned = [(rate, "startup"), *self.planned]  # once more: a REMB may come
        else:
            self.planned = []  # the link is full, or nothing says it is not: stop here
            if probe.kind == "alr" and outcome != "inconclusive" and not probe.reported:
                # judged by REMB, a failed probe costs the viewer: wait longer each time
                # (measured by transport-cc, it costs a short queue: keep probing every 5 s)
                self.alr_interval_s = min(2 * self.alr_interval_s, MAX_ALR_INTERVAL_S)
        # soon after startup (its verdicts are coarse) and after a pass (keep climbing)
        soon = (probe.kind == "startup" and not self.planned) or outcome == "passed"
        self.next_alr_at = at + (FIRST_ALR_S if soon else self.alr_interval_s)
