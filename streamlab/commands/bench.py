"""``streamlab bench``: run a scenario file (or the pytest-benchmark suite) and report.

``streamlab bench --scenarios benchmarks/default.toml [--out DIR] [--repeat N]
[--only NAME ...] [--dask local:N | tcp://HOST:8786]`` writes ``DIR/<file stem>.json``
(pytest-benchmark JSON), its ``.samples.json`` and the report. Without ``--scenarios`` it
runs ``benchmarks/`` with pytest-benchmark as before. A file with an ``[rmcat]`` table
(``benchmarks/rmcat.toml``) runs the RMCAT test cases instead (``--time-scale``: every time
of every case multiplied by it); see ``streamlab.experiments.rmcat``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from streamlab.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench", help="run a scenario file (or benchmarks/ with pytest-benchmark) + report"
    )
    parser.add_argument("suite", nargs="?", choices=["codecs"],
                        help="codecs: the codecs at equal quality (BD-rate; --out reports/codecs)")
    parser.add_argument("--scenarios", help="scenario TOML file ([defaults], [[scenario]], ...)")
    parser.add_argument("--repeat", type=int, default=1, help="repeats per scenario (default 1)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios")
    parser.add_argument("--dask", metavar="SPEC", help="local:N or tcp://HOST:8786")
    parser.add_argument("--name", help="result file stem (default: the scenario file's stem)")
    parser.add_argument("--no-report", action="store_true", help="write the JSON only")
    parser.add_argument("-k", dest="select", help="pytest -k expression (without --scenarios)")
    parser.add_argument("--dir", default="benchmarks", help="benchmark folder (pytest mode)")
    parser.add_argument("--out", default="reports", help="output folder (default: reports)")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="RMCAT files: multiply every time of every case (0.25: 5.1 in 25 s)")
    from streamlab.bench.codecs import add_arguments

    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.suite == "codecs":
        from streamlab.bench.codecs import run_from_args

        return run_from_args(args, "reports/codecs" if args.out == "reports" else args.out)
    if args.scenarios:
        from streamlab.experiments import rmcat

        if rmcat.is_rmcat_file(args.scenarios):
            return rmcat.run_from_args(args)
        return _scenarios(args)
    return _pytest(args)


def _scenarios(args: argparse.Namespace) -> int:
    from streamlab.experiments import report, results, scenario

    if not 1 <= args.repeat <= 100:
        raise ConfigError(f"--repeat must be between 1 and 100, got {args.repeat}")
    chosen = scenario.select(scenario.load(args.scenarios), args.only)
    if args.dask:
        from streamlab.experiments.dask import run_on

        runs = run_on(args.dask, chosen, args.repeat)
    else:
        from streamlab.experiments.runner import run_all

        runs = run_all(chosen, args.repeat)
    out = Path(args.out)
    path = results.write(runs, out / f"{args.name or Path(args.scenarios).stem}.json",
                         source=str(args.scenarios))  # fmt: skip
    failed = [r for r in runs if r.error]
    print(f"results: {path} ({len(runs)} runs, {len(failed)} failed)")
    for run in failed:
        print(f"  {run.name} #{run.repeat + 1}: {run.error}")
    if not args.no_report:
        md, html = report.write([path], out)
        print(f"report: {md} and {html}")
    return 1 if failed and len(failed) == len(runs) else 0


def _pytest(args: argparse.Namespace) -> int:
    from streamlab.bench.report import load_results, write_report

    if not Path(args.dir).is_dir():
        raise ConfigError(f"no benchmark folder {args.dir!r} (run from the streamlab checkout)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "bench.json"
    command = [sys.executable, "-m", "pytest", args.dir, "--benchmark-enable", "--benchmark-only",
               f"--benchmark-json={json_path}", "-p", "no:cacheprovider", "-q"]  # fmt: skip
    if args.select:
        command += ["-k", args.select]
    code = subprocess.call(command)
    if not json_path.exists():
        return code or 1
    files = write_report(load_results(json_path), out)
    print(f"report: {files.markdown}")
    return code
