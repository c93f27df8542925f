"""``streamlab bench codecs``: the codecs compared at equal quality.

Encodes the two dataset clips (a moving stretch of each, at their own 768x432) and the
synthetic 640x480@30 scene with VP8, H.264, VP9 and AV1 at five bitrates each, through the
project's shared encoder on one pinned core, then times the dataset clips scaled to
640x480@30 (the issue's 33 ms budget) at the rung's target and twice it, and writes
``codecs.json``, ``codecs.md`` (BD-rate against VP8 with every point, encode ms against
the frame budget) and ``codecs.png``.
``python -m streamlab.bench.codecs --out reports/codecs`` does the same.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the sweep's modules load numpy, PyAV and OpenCV: only when it runs
    from streamlab.bench.codec_report import CodecReport
    from streamlab.bench.codec_sweep import RdPoint

FRAMES = 120  # per dataset clip: 12 s of the person clip, 9.6 s of the cars clip
SYNTHETIC_FRAMES = 300  # 10 s at 30 fps
QUICK_FRAMES = 20
BUDGET_SIZE, BUDGET_FPS, BUDGET_FACTORS = (640, 480), 30.0, (1.0, 2.0)


def run_codec_bench(
    out: Path | str,
    *,
    frames: int = FRAMES,
    synthetic_frames: int = SYNTHETIC_FRAMES,
    clips: Sequence[str] | None = None,
    codecs: Sequence[str] | None = None,
    factors: Sequence[float] | None = None,
    pin: bool = True,
    verbose: bool = False,
) -> tuple[list[RdPoint], CodecReport]:
    """Run the sweep and write its report into ``out``; the points and the files.

    ``clips`` (default person, cars, synthetic), ``codecs`` (default the four transcoded
    ones) and ``factors`` (default ``codec_sweep.RATE_FACTORS``) narrow it down."""
    from streamlab.bench.codec_clips import CLIP_NAMES, default_clips, retimed
    from streamlab.bench.codec_report import write
    from streamlab.bench.codec_sweep import RATE_FACTORS, one_core, sweep
    from streamlab.strategies.codec import TRANSCODED

    clips = CLIP_NAMES if clips is None else clips
    codecs = TRANSCODED if codecs is None else codecs
    factors = RATE_FACTORS if factors is None else factors
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only, not a banner per encoder
    loaded = default_clips(frames, synthetic_frames=synthetic_frames, include=tuple(clips))

    def show(point: RdPoint) -> None:
        if verbose:
            print(f"  {point.clip:<18} {point.codec:<5} {point.target_bps / 1000:6.0f}k -> "
                  f"{point.rate_bps / 1000:6.0f}k  PSNR-Y {point.psnr_y:5.2f}  "
                  f"SSIM-Y {point.ssim_y:.4f}  encode p95 {point.encode_ms_p95:5.1f} ms",
                  flush=True)  # fmt: skip

    # the budget: real pictures at 640x480@30, at the rung's target and twice that
    budget_clips = [retimed(c, *BUDGET_SIZE, BUDGET_FPS) for c in loaded if not c.has_code]
    started = time.perf_counter()
    with one_core() if pin else nullcontext() as cpu:
        points = sweep(loaded, codecs_=codecs, factors=factors, progress=show)
        budget = sweep(budget_clips, codecs_=codecs, factors=BUDGET_FACTORS, progress=show)
    meta = {
        "clips": ", ".join(f"{c.name} {c.size[0]}x{c.size[1]}@{c.fps:g} ({len(c.frames)} frames)"
                           for c in loaded),
        "bitrates": "x".join(f"{f:g}" for f in factors) + " of the ladder's target for the size",
        "encoders": "streamlab.webrtc.encoder.SharedEncoder, threads=1 (the viewers' settings)",
        "pinned_to": f"CPU {cpu}" if cpu is not None else "no CPU",
        "scores": "PSNR-Y, SSIM-Y per frame (streamlab.quality.metrics), mean over frames",
        "credit": "; ".join(sorted({c.credit for c in loaded if c.credit})) or "synthetic only",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    return points, write(points, out, meta, budget=budget)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m streamlab.bench.codecs", description=__doc__)
    add_arguments(parser)
    parser.add_argument("--out", default="reports/codecs", help="output folder")
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``streamlab bench codecs`` shares with this module's own command line."""
    parser.add_argument("--frames", type=int, help=f"frames per dataset clip (default {FRAMES}, "
                        f"synthetic {SYNTHETIC_FRAMES})")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_FRAMES} frames per clip (a smoke run, seconds)")  # fmt: skip


def run_from_args(args: argparse.Namespace, out: str) -> int:
    """Run with parsed options; prints where the report went and the BD-rate table."""
    frames = QUICK_FRAMES if args.quick else (args.frames or FRAMES)
    synthetic = QUICK_FRAMES if args.quick else (args.frames or SYNTHETIC_FRAMES)
    if frames < 2:
        print("--frames must be at least 2", file=sys.stderr)
        return 2
    _, report = run_codec_bench(out, frames=frames, synthetic_frames=synthetic, verbose=True)
    print(f"report: {report.markdown} ({report.json}, {report.plot})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_from_args(args, args.out)


if __name__ == "__main__":
    sys.exit(main())
