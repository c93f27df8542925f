"""``streamlab datasets build|list``: the clips in datasets/manifest.json."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("datasets", help="build or list the dataset manifest")
    parser.add_argument("action", choices=["build", "list"])
    parser.add_argument("--manifest", type=Path, help="manifest path (default datasets/)")
    parser.add_argument("--out", type=Path, help="where synthetic clips go (default generated/)")
    parser.add_argument("--only", help="build just this entry")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamlab.datasets import MANIFEST, load_manifest, write_synthetic

    manifest: Path = args.manifest or MANIFEST
    entries = load_manifest(manifest)
    base = manifest.resolve().parent.parent
    if args.action == "list":
        for entry in entries:
            where = entry.location
            state = "ok" if entry.available(base) else "missing"
            print(f"{entry.kind:9} {entry.name:32} {state:7} {where}")
        return 0
    out = args.out or manifest.parent / "generated"
    chosen = [e for e in entries if e.kind == "synthetic" and args.only in (None, e.name)]
    if args.only and not chosen:
        print(f"streamlab datasets: error: no synthetic entry named {args.only!r}")
        return 2
    for entry in chosen:
        video, truth = write_synthetic(entry, out)
        print(f"wrote {video} and {truth} ({entry.frames} frames)")
    return 0
