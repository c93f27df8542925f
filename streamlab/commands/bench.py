"""``streamlab bench [-k EXPR] [--out DIR]``: run the benchmarks, then write the report."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from streamlab.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="run benchmarks/ with pytest-benchmark + report")
    parser.add_argument("-k", dest="select", help="pytest -k expression to pick benchmarks")
    parser.add_argument("--dir", default="benchmarks", help="benchmark folder")
    parser.add_argument("--out", default="reports", help="output folder (default: reports)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamlab.bench.report import load_results, write_report

    if not Path(args.dir).is_dir():
        raise ConfigError(f"no benchmark folder {args.dir!r} (run from the streamlab checkout)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "bench.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        args.dir,
        "--benchmark-enable",
        "--benchmark-only",
        f"--benchmark-json={json_path}",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    if args.select:
        command += ["-k", args.select]
    code = subprocess.call(command)
    if not json_path.exists():
        return code or 1
    files = write_report(load_results(json_path), out)
    print(f"report: {files.markdown}")
    return code
