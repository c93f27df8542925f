"""``streamlab report RESULT.json [...] --out DIR``: results → Markdown + HTML with plots.

Scenario results (``streamlab bench --scenarios``) get the experiments report (CDFs, time
series, IQR bars, calibration); other pytest-benchmark JSON the pandas summary.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="report on benchmark JSON (Markdown, HTML, plots); several = runs"
    )
    parser.add_argument("results", nargs="+", help="result JSON file(s); several = runs")
    parser.add_argument("--out", default="reports", help="output folder (default: reports)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamlab.experiments import results

    if all(results.is_experiment(results.read(p)) for p in args.results):
        from streamlab.experiments.report import write

        md, html = write(list(args.results), args.out)
        print(f"report: {md} and {html}")
        return 0
    from streamlab.bench.report import load_results, write_report

    frame = load_results(*args.results)
    files = write_report(frame, args.out)
    plots = len(files.plots)
    print(f"{len(frame)} benchmark rows → {files.csv}, {files.markdown}, {plots} plot(s)")
    return 0
