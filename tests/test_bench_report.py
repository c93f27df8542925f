"""Benchmark JSON → pandas → report files, from a real pytest-benchmark run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import streamlab as sl
from streamlab.bench.report import load_results, write_report

BENCH = """
import pytest

@pytest.mark.parametrize("size", [10, 1000])
def test_sum(benchmark, size):
    benchmark.extra_info.update(strategy="sum", size=size)
    benchmark.group = "adding"
    benchmark(sum, range(size))
"""


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench")
    (folder / "test_tiny_bench.py").write_text(BENCH)
    out = folder / "out.json"
    # pytest-benchmark alone (the other installed plugins, nbval's nbformat above all, took
    # seconds to import), each benchmark timed for 0.1 s instead of 1 s: still 3+ rounds
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(folder),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "pytest_benchmark.plugin",
            "--benchmark-enable",
            "--benchmark-only",
            "--benchmark-min-rounds=3",
            "--benchmark-max-time=0.1",
            f"--benchmark-json={out}",
            "-o",
            "addopts=",
        ],
        check=True,
        capture_output=True,
        cwd=folder,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    return out


def test_rows_carry_extra_info(bench_json: Path) -> None:
    frame = load_results(bench_json)
    assert len(frame) == 2
    assert set(frame["size"]) == {10, 1000}
    assert set(frame["strategy"]) == {"sum"}
    assert (frame["median_ms"] > 0).all()
    assert (frame["group"] == "adding").all()
    big = frame.set_index("size").loc[1000, "median_ms"]
    small = frame.set_index("size").loc[10, "median_ms"]
    assert big > small


def test_two_runs_compare(bench_json: Path, tmp_path: Path) -> None:
    other = tmp_path / "second.json"
    other.write_text(bench_json.read_text())
    frame = load_results(bench_json, other)
    assert sorted(frame["run"].unique()) == sorted([bench_json.stem, "second"])
    files = write_report(frame, tmp_path / "report")
    assert "| run |" in files.markdown.read_text()


def test_report_files(bench_json: Path, tmp_path: Path) -> None:
    files = write_report(load_results(bench_json), tmp_path)
    text = files.markdown.read_text()
    assert "## adding" in text and "size" in text and "strategy" in text
    assert files.csv.read_text().count("\n") == 3
    assert [p.name for p in files.plots] == ["adding.png"]
    assert files.plots[0].read_bytes()[:4] == b"\x89PNG"


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(sl.ConfigError, match="not found"):
        load_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nope": 1}))
    with pytest.raises(sl.ConfigError, match="not pytest-benchmark JSON"):
        load_results(bad)


def test_cli_report(bench_json: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamlab.cli", "report", str(bench_json), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "summary.md").exists()
    missing = subprocess.run(
        [sys.executable, "-m", "streamlab.cli", "report", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
