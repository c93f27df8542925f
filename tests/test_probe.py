"""Probing a viewer's link: when, at what rate, for how long, and what each verdict does."""

from __future__ import annotations

import pytest

from streamlab.delivery.probe import GRACE_S, MAX_DURATION_S, MIN_DURATION_S, Prober


def run(prober: Prober, start: float, estimate: float, *, rembs: dict[float, float] | None = None,
        step: float = 0.01) -> tuple[float, list[tuple[float, float]]]:  # fmt: skip
    """Drive ``prober`` until its current probe is judged; returns (when, [(at, rate)])."""
    rates: list[tuple[float, float]] = []
    at = start
    pending = dict(rembs or {})
    while True:
        for when in [w for w in pending if w <= at]:
            prober.on_remb(pending.pop(when), at)
        rate = prober.rate(at, estimate)
        if rate is not None:
            rates.append((at, rate))
        if prober.take_verdict() is not None:
            return at, rates
        at = round(at + step, 6)
        assert at < start + 10, "a probe must end"


def test_startup_probes_at_three_then_six_times_the_start_and_doubles_a_passing_one() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.on_remb(500_000, 0.0)  # the receiver speaks REMB
    prober.startup(0.0)
    first_end, first = run(prober, 0.0, 300_000, rembs={0.5: 950_000})
    assert {rate for _, rate in first} == {900_000}
    assert prober.results[-1].outcome == "passed" and prober.results[-1].estimate_bps == 900_000
    _, second = run(prober, first_end + 0.01, 900_000, rembs={first_end + 0.3: 1_900_000})
    assert {rate for _, rate in second} == {1_800_000}
    assert prober.planned == [(3_600_000, "startup")], "a passing probe is followed at 2x"


def test_a_probe_is_short_enough_that_a_full_link_queues_at_most_100_ms_of_it() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.startup(0.0)
    _, rates = run(prober, 0.0, 300_000)
    duration = rates[-1][0] - rates[0][0]
    # at 3x the estimate the excess is 2x: 0.1 s / 2 = 50 ms, raised to the minimum
    assert MIN_DURATION_S - 0.02 <= duration <= MIN_DURATION_S + 0.02
    ramp = Prober(1_000_000, max_bps=10_000_000)
    ramp.want(1_250_000, 0.0)
    _, rates = run(ramp, 0.0, 1_000_000)
    assert rates[-1][0] - rates[0][0] == pytest.approx(min(MAX_DURATION_S, 0.1 / 0.25), abs=0.02)


def test_a_falling_remb_is_overuse_and_stops_further_probes() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.on_remb(600_000, 0.0)
    prober.startup(0.0)
    run(prober, 0.0, 300_000, rembs={0.3: 400_000})
    result = prober.results[-1]
    assert (result.outcome, result.estimate_bps) == ("overuse", None), "the estimate stays"
    assert prober.planned == [], "no 6x probe into a full link"


def test_a_remb_below_a_startup_probe_says_what_the_link_carried() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.startup(0.0)
    run(prober, 0.0, 300_000, rembs={0.4: 640_000})  # Chromium: the probe's measured rate
    result = prober.results[-1]
    assert (result.outcome, result.estimate_bps) == ("limited", 640_000)
    assert prober.planned == []


def test_a_probe_no_remb_answered_is_inconclusive() -> None:
    prober = Prober(300_000, max_bps=10_000_000)  # aiortc's receiver: no REMB in its first 3 s
    prober.startup(0.0)
    end, _ = run(prober, 0.0, 300_000)
    result = prober.results[-1]
    assert (result.outcome, result.estimate_bps) == ("inconclusive", None)
    assert end >= MIN_DURATION_S + GRACE_S - 0.02, "the verdict waits out the grace period"


def test_padding_lost_on_the_rtx_stream_during_a_probe_is_loss() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.on_remb(400_000, 0.0)
    prober.on_rtx_lost(0, 0.0)
    prober.startup(0.0)
    prober.rate(0.0, 300_000)
    prober.on_rtx_lost(12, 0.05)
    run(prober, 0.06, 300_000, rembs={0.3: 420_000})
    assert prober.results[-1].outcome == "loss"


def test_without_a_remb_in_its_window_a_probe_is_inconclusive_and_changes_nothing() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.on_remb(280_000, 0.0)  # this receiver speaks REMB, but none came for the probe
    prober.want(500_000, 0.0)
    run(prober, 0.0, 300_000)
    result = prober.results[-1]
    assert (result.outcome, result.estimate_bps) == ("inconclusive", None)


def test_loss_during_a_probe_leaves_the_estimators_cut_standing() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.on_remb(500_000, 0.0)
    prober.startup(0.0)
    prober.rate(0.0, 300_000)
    prober.on_loss(0.05)
    run(prober, 0.06, 300_000, rembs={0.3: 520_000})
    assert (prober.results[-1].outcome, prober.results[-1].estimate_bps) == ("loss", None)


def test_alr_probes_wait_their_interval_and_back_off_after_a_failure() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.on_remb(500_000, 0.0)
    prober.want(700_000, 0.0)
    end, _ = run(prober, 0.0, 500_000, rembs={0.2: 400_000})
    assert prober.results[-1].outcome == "overuse"
    prober.want(700_000, end + 1.0)
    assert prober.rate(end + 1.0, 500_000) is None, "not before the (doubled) interval"
    assert prober.alr_interval_s == 10.0
    prober.want(700_000, end + 10.0)
    assert prober.rate(end + 10.0, 500_000) == 700_000


def test_a_probe_never_lowers_the_estimate() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.on_remb(120_000, 0.0)
    prober.startup(0.0)
    run(prober, 0.0, 300_000, rembs={0.2: 130_000})  # a REMB from before the probe counted
    assert prober.results[-1].estimate_bps is None, "limited below the estimate: no change"
    climb = Prober(300_000, max_bps=10_000_000)
    climb.on_remb(700_000, 0.0)
    climb.want(1_500_000, 0.0)
    run(climb, 0.0, 683_000, rembs={0.3: 720_000})
    result = climb.results[-1]
    assert (result.outcome, result.estimate_bps) == ("passed", 1_080_000), "1.5 x the REMB"


def test_an_unanswered_startup_probe_is_tried_once_more_then_given_up() -> None:
    prober = Prober(300_000, max_bps=10_000_000)
    prober.on_remb(250_000, 0.0)
    prober.startup(0.0)
    end, _ = run(prober, 0.0, 300_000)
    assert prober.results[-1].outcome == "inconclusive"
    assert prober.planned[0] == (900_000, "startup"), "once more: a REMB may come late"
    run(prober, end + 0.01, 300_000)
    assert prober.results[-1].outcome == "inconclusive" and prober.planned == []
