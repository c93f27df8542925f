"""``streamlab report BENCH.json [...] --out DIR``: benchmark JSON → CSV, Markdown, plots."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="summarise pytest-benchmark JSON with pandas (CSV, Markdown, plots)"
    )
    parser.add_argument("results", nargs="+", help="pytest-benchmark JSON file(s); several = runs")
    parser.add_argument("--out", default="reports", help="output folder (default: reports)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamlab.bench.report import load_results, write_report

    frame = load_results(*args.results)
    files = write_report(frame, args.out)
    plots = len(files.plots)
    print(f"{len(frame)} benchmark rows → {files.csv}, {files.markdown}, {plots} plot(s)")
    return 0
