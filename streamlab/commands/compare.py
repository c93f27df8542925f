"""``streamlab compare A.json B.json [--threshold 10%] [--fail-on-regression]``.

Matches scenarios by name and parameters; per metric prints A, B, B/A and a verdict
(better / worse / same / changed / inconclusive) from the repeats; exit 1 on a regression
when asked, so CI can use it.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("compare", help="run vs run: a verdict per scenario and metric")
    parser.add_argument("a", help="the reference results (JSON)")
    parser.add_argument("b", help="the results to judge (JSON)")
    parser.add_argument("--threshold", default="10%", help="smallest effect that counts (10%%)")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 when any metric is worse")  # fmt: skip
    parser.add_argument("--all", action="store_true", help="also print 'same' rows")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamlab.experiments.compare import compare, parse_threshold, regressions, to_text

    rows = compare(args.a, args.b, threshold=parse_threshold(args.threshold))
    shown = rows if args.all else [r for r in rows if r.verdict != "same"]
    print(to_text(shown) if shown else "no differences beyond noise and the threshold")
    worse = regressions(rows)
    same = sum(1 for r in rows if r.verdict == "same")
    print(f"\n{len(rows)} comparisons: {len(worse)} worse, {same} same within noise")
    return 1 if worse and args.fail_on_regression else 0
