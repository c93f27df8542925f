"""The RFC 8868 metrics of an RMCAT case, from sampled series, and the case's verdict.

Pure functions over numbers, so they are tested with known answers:

- ``jain(rates)``: Jain's fairness index, (Σx)² / (n·Σx²); 1.0 = equal shares;
- ``window_rates(times, cumulative_bytes)``: bit/s over a sliding window from byte counters;
- ``time_to_reach(times, values, since, until, target)``: seconds from ``since`` until a
  value first reaches ``target`` (None: not before ``until``);
- ``time_until_held(...)``: seconds until values stay at or under a limit for a while;
- ``changes_per_minute(times, labels, excluded)``: rung changes per minute outside the
  excluded (transition) windows;
- ``utilisation(times, cumulative_bytes, capacity)``: delivered bits / offered capacity;
- ``percentile``; ``capacity_at``.

``Check`` is one target of the issue (measured value, limit, met or not); a case's verdict
is met when every check is.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

Schedule = Sequence[tuple[float, float]]  # (from second, bit/s), sorted


def jain(rates: Sequence[float]) -> float | None:
    """Jain's fairness index of ``rates`` (None for no flow or no traffic at all)."""
    values = [max(0.0, float(r)) for r in rates]
    squares = sum(v * v for v in values)
    if not values or squares == 0:
        return None
    return sum(values) ** 2 / (len(values) * squares)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation, as numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def capacity_at(schedule: Schedule, t: float) -> float:
    """The capacity (bit/s) in force at second ``t`` (the first step before the first)."""
    rate = schedule[0][1]
    for at, value in schedule:
        if at <= t:
            rate = value
    return rate


def window_rates(times: Sequence[float], cumulative_bytes: Sequence[float],
                 window_s: float = 1.0) -> list[float]:  # fmt: skip
    """bit/s at each sample over the last ``window_s`` (shorter at the start; 0 at first)."""
    rates = []
    start = 0
    for i, t in enumerate(times):
        while start < i and times[start] < t - window_s - 1e-9:
            start += 1
        span = t - times[start]
        rates.append((cumulative_bytes[i] - cumulative_bytes[start]) * 8 / span if span else 0.0)
    return rates


def time_to_reach(times: Sequence[float], values: Sequence[float], since: float,
                  until: float, target: float) -> float | None:  # fmt: skip
    """Seconds from ``since`` until a value (sampled at ``times``) is ≥ ``target``."""
    for t, value in zip(times, values, strict=True):
        if since <= t <= until and value >= target:
            return round(t - since, 2)
    return None


def time_until_held(times: Sequence[float], values: Sequence[float], since: float,
                    until: float, limit: float, hold_s: float = 1.0) -> float | None:  # fmt: skip
    """Seconds from ``since`` until the values stay ≤ ``limit`` for ``hold_s`` (within
    ``until``); 0.0 when they already do; None when they never do or there is no sample."""
    points = [(t, v) for t, v in zip(times, values, strict=True) if since <= t <= until]
    if not points:
        return None
    for i, (t, _) in enumerate(points):
        if t + hold_s > until:
            break
        held = [v for s, v in points[i:] if s <= t + hold_s]
        if all(v <= limit for v in held):
            return round(max(0.0, t - since), 2)
    return None


def changes_per_minute(times: Sequence[float], labels: Sequence[Any],
                       excluded: Sequence[tuple[float, float]] = ()) -> float | None:  # fmt: skip
    """Label changes per minute, counting only samples outside ``excluded`` windows (and
    only time outside them); None when no steady time is left."""

    def steady(t: float) -> bool:
        return not any(a <= t < b for a, b in excluded)

    changes, seconds = 0, 0.0
    previous: Any = None
    for i, (t, label) in enumerate(zip(times, labels, strict=True)):
        if label is None:
            continue
        if i and steady(t) and steady(times[i - 1]):
            seconds += t - times[i - 1]
            if previous is not None and label != previous:
                changes += 1
        previous = label
    if seconds < 1.0:
        return None
    return round(changes / seconds * 60.0, 2)


def utilisation(times: Sequence[float], cumulative_bytes: Sequence[float],
                schedule: Schedule) -> float | None:  # fmt: skip
    """Bits delivered between the first and last sample / the capacity over that time."""
    if len(times) < 2:
        return None
    offered = 0.0
    for a, b in itertools.pairwise(times):
        offered += capacity_at(schedule, a) * (b - a)
    if offered <= 0:
        return None
    return (cumulative_bytes[-1] - cumulative_bytes[0]) * 8 / offered


@dataclass(frozen=True)
class Check:
    """One of the issue's targets for a case: the measured value against its limit."""

    name: str
    value: float | None
    limit: float
    higher_is_better: bool = False
    detail: str = ""

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}

    def describe(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        value = "never" if self.value is None else f"{self.value:g}"
        return f"{self.name} {value} (target {sign} {self.limit:g})"


def verdict(checks: Sequence[Check]) -> dict[str, Any]:
    """``{"met": bool, "misses": [text...], "checks": [...]}`` for a case."""
    misses = [c.describe() for c in checks if not c.met]
    return {"met": not misses, "misses": misses, "checks": [c.to_dict() for c in checks]}


# -- a run's figures -------------------------------------------------------------------------

QUEUE_LIMIT_MS = 150.0
START_LIMIT_S = 2.0  # the issue: the rung that fits within 2 s of the first frame
STEP_UP_LIMIT_S = 5.0  # ... and within 5 s of a step up
CHANGES_LIMIT = 12.0  # ≤ 1 rung change per 5 s in steady state
JAIN_LIMIT = 0.9
SETTLE_S = 5.0  # after a change (capacity, a flow joining or leaving): not steady state
RESTREAMER_MAX_BPS = 1_500_000  # aiortc's VP8 encoder clamps its bitrate to 250k..1.5M
FRACTION = 0.9
HEADROOM = 1.1  # a rung fits a share when its bitrate plus 10 % (RTP, probes, RTX) does


def _active(sessions: Sequence[Sequence[float]], t: float) -> bool:
    return any(a <= t < b for a, b in sessions)


def reference_bps(share: float, server: str, ladder: Sequence[int]) -> float:
    """The rate a flow can reach on a fair ``share``: for streamlab the highest rung that
    fits it with ``HEADROOM`` (the lowest if none does), for the restreamer the share up to
    aiortc's encoder cap."""
    if server == "restreamer":
        return min(share, RESTREAMER_MAX_BPS)
    fitting = [b for b in ladder if b * HEADROOM <= share]
    return float(max(fitting) if fitting else min(ladder))


def evaluate(case: Any, server: str, raw: dict[str, Any], ladder: Sequence[int]) -> dict[str, Any]:
    """The RFC 8868 figures of one run of ``case`` (an ``rmcat.Case``) and its verdict."""
    from streamlab.quality.smoothness import Shown, smoothness

    samples = raw["samples"]
    times = [s["t"] for s in samples]
    schedule = [(float(at), float(bps)) for at, bps in case.capacity]
    flows = [list(sessions) for sessions in case.flows]
    tcp = case.tcp

    def competitors(t: float) -> int:
        count = sum(_active(f, t) for f in flows)
        return max(1, count + (1 if tcp is not None and tcp[0] <= t < tcp[1] else 0))

    def share(t: float) -> float:
        return capacity_at(schedule, t) / competitors(t)

    boundaries = sorted({at for at, _ in schedule if at > 0}
                        | {x for f in flows for s in f for x in s}
                        | (set(tcp) if tcp else set()))  # fmt: skip
    boundaries = [b for b in boundaries if 0 < b < case.duration_s]
    excluded = [(b, b + SETTLE_S) for b in [0.0, *boundaries]]
    per_flow = []
    steady_rates: list[list[float]] = [[] for _ in flows]
    all_steady = {t for t in times if not any(a <= t < b for a, b in excluded)}
    for index, sessions in enumerate(flows):
        series = [s["flows"][index] for s in samples]
        rates = window_rates(times, [f["bytes"] for f in series])
        owd = raw["flows"][index]["owd"]
        base = min((ms for _, ms in owd), default=0.0)
        queue_t = [t for t, _ in owd]
        queue_ms = [ms - base for _, ms in owd]
        if not queue_ms:  # no frame code read: what the server measured, if anything
            pairs = [(t, f["queue_delay_ms"]) for t, f in zip(times, series, strict=True)
                     if f.get("queue_delay_ms") is not None]  # fmt: skip
            queue_t, queue_ms = [t for t, _ in pairs], [v for _, v in pairs]
        starts, ups, downs = [], [], []
        for start, end in sessions:
            after = [t / 1000.0 for s in raw["flows"][index]["arrivals"] for t, _, _ in s]
            first = min((a - raw["t0"] for a in after if a - raw["t0"] >= start), default=None)
            nxt = min([b for b in boundaries if b > start] + [end])
            target = FRACTION * reference_bps(share(start + 1e-3), server, ladder)
            reach = None if first is None else time_to_reach(times, rates, first, nxt, target)
            starts.append({"at": start, "first_frame_s": None if first is None
                           else round(first - start, 2), "reach_s": reach,
                           "target_kbps": round(target / 1000)})  # fmt: skip
            for b in boundaries:
                if not start < b < end:
                    continue
                before, now = share(b - 1e-3), share(b + 1e-3)
                nxt = min([x for x in boundaries if x > b] + [end])
                if now > before * 1.01:
                    target = FRACTION * reference_bps(now, server, ladder)
                    if target > FRACTION * reference_bps(before, server, ladder):
                        ups.append({"at": b, "target_kbps": round(target / 1000),
                                    "reach_s": time_to_reach(times, rates, b, nxt, target)})
                elif now < before * 0.99:
                    downs.append({"at": b, "share_kbps": round(now / 1000),
                                  "queue_ok_s": time_until_held(queue_t, queue_ms, b, nxt,
                                                                QUEUE_LIMIT_MS)})  # fmt: skip
        # the server's rung where it reports one (a sample it missed is skipped, not a
        # change), else the decoded size (the restreamer)
        by_rung = any(f.get("rung") for f in series)
        labels = [None if not f.get("active") else f.get("rung") if by_rung
                  else (tuple(f["size"]) if f.get("size") else None) for f in series]  # fmt: skip
        active_s = sum(min(b, case.duration_s) - a for a, b in sessions)
        freezes, frozen_ms = 0, 0.0
        for arrivals in raw["flows"][index]["arrivals"]:
            if len(arrivals) > 2:
                shown = smoothness([Shown(at, None, w, h) for at, w, h in arrivals]).to_dict()
                freezes += int(shown.get("freeze_count") or 0)
                frozen_ms += float(shown.get("freeze_total_ms") or 0.0)
        for t, rate in zip(times, rates, strict=True):
            if t in all_steady and all(_active(other, t) for other in flows):
                steady_rates[index].append(rate)
        total_bytes = series[-1]["bytes"] if series else 0
        per_flow.append({
            "kbps": round(total_bytes * 8 / max(active_s, 1e-9) / 1000, 1),
            "fps": round((series[-1]["frames"] if series else 0) / max(active_s, 1e-9), 1),
            "freezes": freezes, "freeze_total_ms": round(frozen_ms),
            "queue_p95_ms": _round(percentile(queue_ms, 95)),
            "queue_from": "frame codes" if owd else "server",
            "rung_changes_per_min": changes_per_minute(times, labels, excluded),
            "rungs": sorted({str(label) for label in labels if label is not None}),
            "start": starts, "step_ups": ups, "step_downs": downs,
            "series": {"rate_kbps": [round(r / 1000, 1) for r in rates],
                       "target_kbps": [_kbps(f.get("target_bps")) for f in series],
                       "estimate_kbps": [_kbps(f.get("estimate_bps")) for f in series]},
        })  # fmt: skip
    link = raw.get("link") or []
    begin = min(s[0] for f in flows for s in f)
    used = [row for row in link if row["t"] >= begin]
    figures: dict[str, Any] = {"flows": per_flow, "times": times,
                               "capacity_kbps": [capacity_at(schedule, t) / 1000 for t in times]}
    if used:
        figures["utilisation"] = _round(utilisation([r["t"] for r in used],
                                                    [r["sent_bytes"] for r in used], schedule), 3)
        offered = used[-1]["sent_packets"] - used[0]["sent_packets"]
        dropped = used[-1]["dropped"] - used[0]["dropped"]
        figures["loss"] = round(dropped / max(1, offered + dropped), 4)
        figures["dropped"] = dropped
        sojourn = [r["backlog_bytes"] * 8 / capacity_at(schedule, r["t"]) * 1000 for r in used]
        figures["link_queue_p95_ms"] = _round(percentile(sojourn, 95))
    media_bytes = sum(s["flows"][i]["bytes"] for i in range(len(flows)) for s in samples[-1:])
    offered_bits = sum(capacity_at(schedule, a) * (b - a) for a, b in itertools.pairwise(times))
    figures["media_utilisation"] = (round(media_bytes * 8 / offered_bits, 3) if offered_bits
                                    else None)  # fmt: skip
    if len(flows) >= 2:
        means = [sum(r) / len(r) for r in steady_rates if r]
        figures["jain"] = _round(jain(means) if len(means) == len(flows) else None, 3)
    if tcp is not None and link:
        tcp_rates = window_rates([r["t"] for r in link], [r["tcp_bytes"] for r in link])
        figures["tcp_series"] = {"t": [r["t"] for r in link],
                                 "rate_kbps": [round(r / 1000, 1) for r in tcp_rates]}
        on = [r for row, r in zip(link, tcp_rates, strict=True)
              if tcp[0] + SETTLE_S <= row["t"] < tcp[1]]  # fmt: skip
        tcp_kbps = sum(on) / len(on) / 1000 if on else 0.0
        figures["tcp_kbps"] = round(tcp_kbps, 1)
        media = [f["kbps"] for f in per_flow]
        figures["jain_with_tcp"] = _round(jain([*media, tcp_kbps]), 3)
    figures["verdict"] = verdict(_checks(figures, len(flows)))
    return figures


def _checks(figures: dict[str, Any], flow_count: int) -> list[Check]:
    flows = figures["flows"]
    starts = [s["reach_s"] for f in flows for s in f["start"]]
    ups = [u["reach_s"] for f in flows for u in f["step_ups"]]
    changes = [f["rung_changes_per_min"] for f in flows if f["rung_changes_per_min"] is not None]
    queues = [f["queue_p95_ms"] for f in flows]
    checks = [Check("time to 90 % at start (s)", _worst(starts), START_LIMIT_S,
                    detail="from the first frame; 90 % of the highest rung that fits")]
    if ups:
        checks.append(Check("time to 90 % after a step up (s)", _worst(ups), STEP_UP_LIMIT_S))
    checks.append(Check("rung changes per minute, steady", max(changes) if changes else None,
                        CHANGES_LIMIT))  # fmt: skip
    checks.append(Check("p95 queuing delay (ms)", _worst(queues), QUEUE_LIMIT_MS))
    if flow_count >= 2:
        checks.append(Check("Jain's index", figures.get("jain"), JAIN_LIMIT,
                            higher_is_better=True))  # fmt: skip
    return checks


def _worst(values: Sequence[float | None]) -> float | None:
    """The largest value; None if any is None (a target never reached)."""
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _kbps(bps: Any) -> float | None:
    return None if bps is None else round(float(bps) / 1000, 1)
