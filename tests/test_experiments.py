"""Experiments without servers: scenario files, statistics, verdicts, JSON, reports."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from streamlab.errors import ConfigError
from streamlab.experiments import compare, report, results, scenario, stats
from streamlab.experiments.runner import RunResult

SYNTH = "synthetic://?size=320x240&fps=15"


def test_defaults_matrix_and_scenarios_expand_to_the_cross_product() -> None:
    data = {
        "defaults": {"source": SYNTH, "duration_s": 3, "viewers": 2},
        "matrix": {"codec": ["vp8", "h264"]},
        "scenario": [
            {"name": "strategies", "matrix": {"quality": ["aimd", "bandwidth"],
                                              "network": ["", "rate=800k"]}},
            {"name": "fixed", "codec": "vp8"},
        ],
    }  # fmt: skip
    found = scenario.parse(data)
    names = [s.name for s in found]
    assert len(found) == 2 * 2 * 2 + 1
    assert "strategies[codec=h264,quality=aimd,network=rate=800k]" in names
    assert "strategies[codec=vp8,quality=bandwidth,network=none]" in names
    assert names[-1] == "fixed"  # a key the scenario sets is not expanded
    first = found[0]
    assert first.viewers == 2 and first.duration_s == 3.0
    local = scenario.parse({"defaults": {"source": SYNTH, "viewers": 1},
                            "scenario": [{"name": "v", "matrix": {"viewers": [1, 4]}}]})  # fmt: skip
    assert [s.viewers for s in local] == [1, 4]  # a scenario's matrix overrides defaults
    assert first.params()["system"] == "streamlab"
    assert {first.settings["codec"], first.settings["quality"]} == {"vp8", "aimd"}


def test_a_file_round_trips_through_tomllib(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[defaults]\nsource = "camera:640x480@30,gop=15"\n'
        '[[scenario]]\nname = "base"\nbaseline = "restreamer"\nnetwork = "rate=2M"\n'
        '[[scenario]]\nname = "analysed"\nanalyze = "motion,people"\ncpu_load = 1\n'
    )
    base, analysed = scenario.load(path)
    assert base.system == "restreamer" and base.network == "rate=2M"
    assert analysed.settings["analyze"] == ["motion", "people"] and analysed.cpu_load == 1
    assert scenario.Scenario.from_table(analysed.to_dict()) == analysed
    assert scenario.CameraSpec.parse(base.source).options == (("gop", "15"),)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"name": "x", "source": SYNTH, "colour": "red"}, "'x': unknown key 'colour'"),
        ({"name": "x", "source": SYNTH, "viewer": "firefox"}, "viewer must be one of"),
        ({"name": "x", "source": SYNTH, "viewers": 1.5}, "viewers must be an integer"),
        ({"name": "x", "source": SYNTH, "duration_s": 0}, "duration_s = 0 must be between"),
        ({"name": "x", "source": SYNTH, "baseline": "gst"}, "baseline must be one of"),
        ({"name": "x", "source": SYNTH, "baseline": "restreamer"}, "cannot read synthetic"),
        ({"name": "x", "source": "camera:640x480"}, "camera:1280x720@30"),
        ({"name": "x", "source": SYNTH, "codec": "mpeg2"}, "'x': codec"),
        ({"name": "x", "source": SYNTH, "network": "rate=fast"}, "'x': network"),
        ({"name": "x"}, "'source' is required"),
        ({"source": SYNTH}, "'name' must be"),
    ],
)
def test_mistakes_are_one_line_naming_the_scenario(table: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as caught:
        scenario.parse({"scenario": [table]}, where="f.toml")
    text = str(caught.value)
    assert message in text and "\n" not in text and text.startswith("f.toml")


def test_file_level_mistakes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        scenario.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[scenario]\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        scenario.load(bad)
    with pytest.raises(ConfigError, match="duplicate scenario name"):
        scenario.parse({"scenario": [{"name": "a", "source": SYNTH}] * 2})
    with pytest.raises(ConfigError, match="must be a non-empty list"):
        scenario.parse({"matrix": {"codec": "vp8"}, "scenario": [{"name": "a", "source": SYNTH}]})
    with pytest.raises(ConfigError, match="unknown table"):
        scenario.parse({"scenarios": []})


def test_only_picks_by_name_or_base_name() -> None:
    found = scenario.parse({"defaults": {"source": SYNTH}, "scenario": [
        {"name": "a", "matrix": {"codec": ["vp8", "h264"]}}, {"name": "b"}]})  # fmt: skip
    assert [s.name for s in scenario.select(found, ["a"])] == ["a[codec=vp8]", "a[codec=h264]"]
    assert [s.name for s in scenario.select(found, ["b", "a[codec=h264]"])] == [
        "a[codec=h264]", "b"]  # fmt: skip
    with pytest.raises(ConfigError, match="matches no scenario"):
        scenario.select(found, ["c"])


def test_exact_mann_whitney_matches_known_values() -> None:
    u, p = stats.mann_whitney_u([1, 2, 3, 4], [5, 6, 7, 8])
    assert u == 0 and p == pytest.approx(2 / 70)
    _, p = stats.mann_whitney_u([1, 5, 3], [2, 4, 6])
    assert p == pytest.approx(0.7)
    assert stats.smallest_p(3, 3) == pytest.approx(0.1)
    assert sum(stats._u_counts(5, 4)) == 126  # C(9, 4) orderings
    assert stats.quartiles([1, 2, 3, 4, 5]) == (2, 3, 4)
    assert not stats.ranges_overlap([1, 1.1, 1.2], [2, 2.1, 2.2])
    assert stats.ranges_overlap([1, 2.5], [2, 3])


def _runs(
    name: str,
    p50s: list[float],
    *,
    cpu: float = 20.0,
    jitter: float = 2.0,
    params: dict | None = None,
    delay: int = 0,
) -> list[RunResult]:  # type: ignore[type-arg]
    rng = random.Random(hash((name, tuple(p50s))) & 0xFFFF)
    table = {"name": name, "source": SYNTH, "group": "g", **(params or {})}
    if delay:
        table["stage_delay_ms"] = delay
    out = []
    for repeat, p50 in enumerate(p50s):
        latencies = [round(rng.gauss(p50, jitter), 1) for _ in range(200)]
        series = [{"t": float(t), "cpu_percent": cpu + rng.random(), "rx_fps": [30],
                   "rx_kbps": [900.0], "rss_mb": 150.0} for t in range(-2, 6)]  # fmt: skip
        metrics = {"latency_p50_ms": p50, "latency_p95_ms": p50 * 1.2, "latency_p99_ms": p50 * 1.3,
                   "fps": 30.0, "freezes": 0, "max_gap_ms": 40.0, "kbps": 900.0,
                   "cpu_percent": cpu, "rss_mb": 150.0, "stage_ms": {"out": 1.0},
                   "dropped": {"pipeline.skipped": 3}}  # fmt: skip
        out.append(RunResult(scenario.Scenario.from_table(table).to_dict(), repeat, metrics,
                             latencies, series))  # fmt: skip
    return out


def test_verdicts_need_significance_and_an_effect() -> None:
    assert compare.verdict([100, 101, 99, 100], [120, 121, 119, 122], -1, 0.1)[0] == "worse"
    assert compare.verdict([100, 101, 99, 100], [80, 81, 79, 82], -1, 0.1)[0] == "better"
    # significant but below the threshold
    assert compare.verdict([100, 101, 99, 100], [104, 105, 104, 106], -1, 0.1)[0] == "same"
    # big effect but the repeats overlap: noise
    assert compare.verdict([60, 140, 100], [80, 160, 120], -1, 0.1)[0] == "same"
    # three repeats each: they must not overlap at all
    word, how = compare.verdict([100, 102, 101], [130, 131, 129], -1, 0.1)
    assert word == "worse" and "repeats apart" in how
    # two repeats each cannot tell
    assert compare.verdict([100, 102], [130, 131], -1, 0.1)[0] == "inconclusive"
    # one repeat never makes a regression
    assert compare.verdict([100], [150], -1, 0.1)[0] == "inconclusive"
    assert compare.verdict([900, 905, 910, 902], [500, 505, 501, 499], 0, 0.1)[0] == "changed"
    assert compare.parse_threshold("10%") == pytest.approx(0.1)
    assert compare.parse_threshold("0.25") == pytest.approx(0.25)
    with pytest.raises(ConfigError):
        compare.parse_threshold("lots")


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    a = _runs("codec", [60, 61, 59, 60], params={"codec": "vp8"}) + _runs(
        "codec2", [80, 79, 81, 80], params={"codec": "h264"})  # fmt: skip
    b = _runs("codec", [75, 76, 74, 75], params={"codec": "vp8"}) + _runs(
        "codec2", [80, 81, 79, 80], params={"codec": "h264"}) + _runs("new", [1, 2, 3, 4])  # fmt: skip
    return results.write(a, tmp_path / "a.json"), results.write(b, tmp_path / "b.json")


def test_results_are_pytest_benchmark_json_with_samples_beside(two_runs: tuple[Path, Path]) -> None:
    a, _ = two_runs
    doc = json.loads(a.read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    machine = doc["machine_info"]
    assert machine["cores"] >= 1 and len(machine["load_avg_before"]) == 3
    assert "aiortc" in machine["versions"]
    bench = doc["benchmarks"][0]
    assert bench["params"]["codec"] == "vp8" and bench["params"]["system"] == "streamlab"
    assert bench["extra_info"]["latency_p50_ms"] == 60.0  # median of the repeats
    assert len(bench["extra_info"]["repeats"]) == 4
    assert bench["stats"]["rounds"] == 800 and 0.05 < bench["stats"]["median"] < 0.07
    side = results.samples(a)
    assert len(side["codec"]) == 4 and len(side["codec"][0]["latencies_ms"]) == 200
    frame = results.frame(a)
    assert list(frame["name"]) == ["codec", "codec2"] and "dropped.pipeline.skipped" in frame


def test_pytest_benchmark_compare_reads_our_json(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    tool = Path(sys.executable).with_name("pytest-benchmark")
    if not tool.exists():
        pytest.skip("pytest-benchmark's command line is not installed")
    # its Config would import every installed pytest plugin (nbval's nbformat alone ~1.5 s)
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [str(tool), "compare", str(a), str(b)],
        capture_output=True, text=True, timeout=60, cwd=a.parent, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "codec2" in done.stdout and "Failed to load" not in done.stderr


def test_compare_matches_by_name_and_params_and_fails_on_regression(
    two_runs: tuple[Path, Path],
) -> None:
    a, b = two_runs
    rows = compare.compare(a, b, threshold=0.1)
    p50 = {r.scenario: r for r in rows if r.metric == "latency_p50_ms"}
    assert p50["codec"].verdict == "worse" and p50["codec"].ratio == pytest.approx(1.25)
    assert p50["codec2"].verdict == "same"
    assert any(r.scenario == "new" and r.verdict == "only in B" for r in rows)
    cli = [sys.executable, "-m", "streamlab.cli", "compare", str(a), str(b)]
    done = subprocess.run([*cli, "--fail-on-regression"], capture_output=True, text=True)
    assert done.returncode == 1 and "worse" in done.stdout
    assert subprocess.run([*cli, "--threshold", "50%", "--fail-on-regression"],
                          capture_output=True).returncode == 0  # fmt: skip
    same = subprocess.run([*cli[:-1], str(a), "--fail-on-regression"], capture_output=True)
    assert same.returncode == 0
    bad = subprocess.run([*cli[:-1], str(a.with_name("nope.json"))], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not found" in bad.stderr


def test_report_labels_by_parameters_and_checks_calibration(tmp_path: Path) -> None:
    runs = (_runs("cal", [40, 41], params={"codec": "vp8"})
            + _runs("cal-delayed", [140.5, 141], params={"codec": "vp8"}, delay=100)
            + _runs("h264", [50, 52], params={"codec": "h264"}))  # fmt: skip
    path = results.write(runs, tmp_path / "run.json")
    md, html = report.write([path], tmp_path / "out")
    text = md.read_text()
    assert "stage_delay_ms=100" in text and "codec=h264" in text
    key_table = text.split("## g", 1)[1].split("## Calibration", 1)[0]
    assert "| codec=vp8, stage_delay_ms=100 |" in key_table
    assert "cal-delayed" not in key_table  # labels are parameters, never test ids
    assert "## Calibration" in text and "| 100.2 | yes |" in text.replace("100.25", "100.2")
    assert "## Repeat agreement" in text and "## g: per-stage latency" in text
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == ["g_bars.png", "g_fps_kbps.png", "g_latency_cdf.png"]
    assert '<img src="g_latency_cdf.png"' in html.read_text()
    cal = report.calibration(results.frame(path))
    assert list(cal["within ±5 ms"]) == [True]
