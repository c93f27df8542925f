"""The RMCAT test cases (RFC 8867) and their RFC 8868 metrics.

Unit tests give the metrics inputs with known answers; one real case (5.1, variable
capacity, time-scaled to 18 s) runs streamlab's ``bandwidth`` behind the kernel's ``tbf``
with an aiortc viewer in another network namespace, through the same file format and
runner as ``streamlab bench --scenarios benchmarks/rmcat.toml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streamlab.errors import ConfigError
from streamlab.experiments import rmcat
from streamlab.experiments.bottleneck import available
from streamlab.experiments.rmcat_metrics import (
    Check,
    changes_per_minute,
    jain,
    percentile,
    reference_bps,
    time_to_reach,
    time_until_held,
    utilisation,
    verdict,
    window_rates,
)

ROOT = Path(__file__).resolve().parent.parent


def test_jains_index_has_its_known_values() -> None:
    assert jain([5.0, 5.0, 5.0]) == pytest.approx(1.0)
    assert jain([1.0, 0.0]) == pytest.approx(0.5)  # one flow starved: 1/n
    assert jain([3.0, 1.0]) == pytest.approx(16 / 20)
    assert jain([]) is None
    assert jain([0.0, 0.0]) is None


def test_time_to_reach_90_percent_counts_from_the_change() -> None:
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    rates = [0.0, 200.0, 500.0, 880.0, 910.0, 950.0, 990.0]
    assert time_to_reach(times, rates, 0.0, 3.0, 0.9 * 1000) == 2.0
    assert time_to_reach(times, rates, 1.0, 3.0, 0.9 * 1000) == 1.0
    assert time_to_reach(times, rates, 0.0, 1.5, 0.9 * 1000) is None  # not before the next


def test_rates_utilisation_and_percentiles() -> None:
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    cumulative = [0, 50_000, 100_000, 150_000, 200_000]  # 100 kB/s = 800 kbit/s
    assert window_rates(times, cumulative)[1:] == pytest.approx([800_000] * 4)
    assert utilisation(times, cumulative, [(0.0, 1_000_000)]) == pytest.approx(0.8)
    assert utilisation(times, cumulative, [(0.0, 1_000_000), (1.0, 2_000_000)]) == \
        pytest.approx(1.6e6 / 3e6)  # fmt: skip
    assert percentile([float(v) for v in range(1, 101)], 95) == pytest.approx(95.05)
    assert percentile([], 95) is None


def test_rung_changes_are_counted_outside_transitions() -> None:
    times = [float(t) for t in range(61)]
    labels = ["640x360"] * 20 + ["960x540"] * 20 + ["640x360"] * 21
    assert changes_per_minute(times, labels) == pytest.approx(2.0)
    # the change at 20 s falls inside a transition window: only the one at 40 s counts
    assert changes_per_minute(times, labels, [(18.0, 23.0)]) == pytest.approx(60 / 54, abs=0.01)


def test_queue_settles_when_it_stays_under_the_limit() -> None:
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    queue = [300.0, 250.0, 180.0, 100.0, 120.0, 90.0, 80.0, 60.0]
    assert time_until_held(times, queue, 0.0, 3.5, 150.0, hold_s=1.0) == 1.5
    assert time_until_held(times, [10.0] * 8, 0.0, 3.5, 150.0) == 0.0
    assert time_until_held(times, [400.0] * 8, 0.0, 3.5, 150.0) is None


def test_the_reference_is_the_highest_rung_that_fits() -> None:
    ladder = [2_211_840, 1_244_160, 552_960, 311_040, 138_240]
    assert reference_bps(1_000_000, "streamlab", ladder) == 552_960
    assert reference_bps(2_500_000, "streamlab", ladder) == 2_211_840
    assert reference_bps(100_000, "streamlab", ladder) == 138_240  # none fits: the lowest
    assert reference_bps(2_500_000, "restreamer", ladder) == 1_500_000  # aiortc's VP8 cap


def test_a_verdict_lists_its_misses_with_numbers() -> None:
    checks = [Check("p95 queuing delay (ms)", 210.0, 150.0),
              Check("Jain's index", 0.95, 0.9, higher_is_better=True),
              Check("time to 90 % after a step up (s)", None, 5.0)]  # fmt: skip
    result = verdict(checks)
    assert not result["met"]
    assert result["misses"] == ["p95 queuing delay (ms) 210 (target ≤ 150)",
                                "time to 90 % after a step up (s) never (target ≤ 5)"]  # fmt: skip
    assert verdict(checks[1:2])["met"]


def test_the_case_file_parses_and_scales() -> None:
    spec = rmcat.load(ROOT / "benchmarks" / "rmcat.toml")
    names = [case.name for case in spec.cases]
    assert names == ["5.1", "5.2", "5.4", "5.6", "5.8"]
    first = spec.cases[0]
    assert [bps for _, bps in first.capacity] == [1_000_000, 2_500_000, 600_000, 1_000_000]
    short = first.scaled(0.25)
    assert short.duration_s == 25 and [at for at, _ in short.capacity] == [0, 10, 15, 20]
    pause = next(c for c in spec.cases if c.name == "5.8")
    assert pause.flows[1] == ((0.0, 40.0), (60.0, 100.0))
    assert next(c for c in spec.cases if c.name == "5.6").tcp == (0.0, 120.0)
    assert rmcat.is_rmcat_file(ROOT / "benchmarks" / "rmcat.toml")
    assert not rmcat.is_rmcat_file(ROOT / "benchmarks" / "default.toml")


def test_a_wrong_case_says_where() -> None:
    bad = {"rmcat": {"case": [{"name": "x", "duration_s": 10, "capacity": ["1M@5"],
                               "flows": [{"start_s": 0}]}]}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"case #1 \(x\).*first capacity step"):
        rmcat.parse(bad, where="f.toml")


CASE = """
[rmcat]
camera = "1280x720"
queue_ms = 300
servers = ["streamlab"]
settings = { quality = "bandwidth" }

[[rmcat.case]]
name = "5.1"
title = "variable capacity, one flow"
duration_s = 100
capacity = ["1M@0", "2.5M@40", "600k@60", "1M@80"]
flows = [{ start_s = 0 }]
"""


@pytest.mark.rtsp
@pytest.mark.timeout(120)
@pytest.mark.skipif(available() is not None, reason=str(available()))
def test_variable_capacity_one_flow_behind_the_kernels_bottleneck(tmp_path: Path) -> None:
    """5.1 at 0.18 of its times (18 s): the capacity steps reach the qdisc, the flow plays,
    every metric is computed and the case gets a verdict."""
    spec = tmp_path / "rmcat.toml"
    spec.write_text(CASE)
    results = rmcat.run_file(spec, tmp_path / "out", time_scale=0.18)
    (run,) = results["runs"]
    assert run["error"] is None
    raw, metrics = run["raw"], run["metrics"]
    print("\n" + "; ".join(metrics["verdict"]["misses"]) or "met")
    applied = raw["applied"]
    assert [rate for _, rate, _ in applied] == [2_500_000, 600_000, 1_000_000]
    assert [shown.lower() for _, _, shown in applied] == ["2500kbit", "600kbit", "1mbit"]
    assert raw["link"][-1]["sent_bytes"] > 200_000, "the media crossed the qdisc"
    (flow,) = metrics["flows"]
    assert flow["fps"] >= 15, "plays (30 fps sent; generous for a loaded runner)"
    assert 100 <= flow["kbps"] <= 1500, "a rate between the lowest rung and the capacity"
    assert flow["queue_from"] == "frame codes" and flow["queue_p95_ms"] is not None
    assert flow["start"][0]["first_frame_s"] is not None and flow["start"][0]["first_frame_s"] < 5
    assert len(flow["step_ups"]) == 2 and len(flow["step_downs"]) == 1
    assert 0.1 <= metrics["utilisation"] <= 1.05
    assert 0.0 <= metrics["loss"] < 0.5
    names = [check["name"] for check in metrics["verdict"]["checks"]]
    assert any(name.startswith("time to 90 %") for name in names)
    assert "p95 queuing delay (ms)" in names and isinstance(metrics["verdict"]["met"], bool)
    out = tmp_path / "out"
    assert (out / "rmcat.json").exists() and (out / "rmcat-5.1.png").stat().st_size > 5000
    assert "| 5.1 variable capacity, one flow | streamlab |" in (out / "rmcat.md").read_text()
