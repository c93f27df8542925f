"""A codec sweep's results: BD-rate against an anchor codec per clip, the JSON, a markdown
table with every rate-quality point, and the rate-quality plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlab.bench.codec_sweep import RdPoint
from streamlab.quality.bdrate import bd_rate

ANCHOR = "vp8"
LABELS = {"vp8": "VP8", "h264": "H.264", "vp9": "VP9", "av1": "AV1"}


@dataclass(frozen=True, slots=True)
class BdRow:
    """BD-rate (%) of ``codec`` against the anchor on ``clip``, on PSNR-Y and on SSIM-Y;
    None where the curves do not overlap in quality."""

    clip: str
    codec: str
    psnr_y: float | None
    ssim_y: float | None


@dataclass(frozen=True, slots=True)
class CodecReport:
    json: Path
    markdown: Path
    plot: Path | None


def _curve(points: Sequence[RdPoint], clip: str, codec: str) -> list[RdPoint]:
    return sorted((p for p in points if p.clip == clip and p.codec == codec),
                  key=lambda p: p.target_bps)  # fmt: skip


def _order(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _bd(anchor: list[RdPoint], test: list[RdPoint], metric: str) -> float | None:
    try:
        return bd_rate([p.rate_bps for p in anchor], [getattr(p, metric) for p in anchor],
                       [p.rate_bps for p in test], [getattr(p, metric) for p in test])  # fmt: skip
    except ValueError:  # no overlap, or two points of the same quality
        return None


def bd_table(points: Sequence[RdPoint], anchor: str = ANCHOR) -> list[BdRow]:
    """BD-rate of every other codec against ``anchor``, per clip (PCHIP, rate actually sent)."""
    rows = []
    for clip in _order([p.clip for p in points]):
        base = _curve(points, clip, anchor)
        if not base:
            continue
        for codec in _order([p.codec for p in points]):
            if codec == anchor:
                continue
            test = _curve(points, clip, codec)
            if test:
                psnr, ssim = _bd(base, test, "psnr_y"), _bd(base, test, "ssim_y")
                rows.append(BdRow(clip, codec, psnr, ssim))
    return rows


def top_rung(points: Sequence[RdPoint]) -> list[dict[str, Any]]:
    """Per clip and codec, the encode times at the highest bitrate against the frame budget."""
    out = []
    for clip in _order([p.clip for p in points]):
        for codec in _order([p.codec for p in points]):
            curve = _curve(points, clip, codec)
            if not curve:
                continue
            top = curve[-1]
            budget = 1000.0 / top.fps
            out.append({"clip": clip, "codec": codec, "target_bps": top.target_bps,
                        "encode_ms_p50": top.encode_ms_p50, "encode_ms_p95": top.encode_ms_p95,
                        "budget_ms": budget,
                        "within_budget": top.encode_ms_p95 <= budget})  # fmt: skip
    return out


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} %"


def markdown(points: Sequence[RdPoint], rows: Sequence[BdRow], meta: dict[str, Any],
             budget: Sequence[RdPoint] = ()) -> str:  # fmt: skip
    """The report: BD-rate per clip and codec, encode ms against the frame budget, then
    every point."""
    anchor = LABELS.get(meta.get("anchor", ANCHOR), ANCHOR)
    codecs = [c for c in _order([p.codec for p in points]) if c != meta.get("anchor", ANCHOR)]
    clips = _order([p.clip for p in points])
    lines = [f"# Codecs at equal quality: BD-rate against {anchor}", ""]
    lines.append(f"Negative: the codec sends that much less than {anchor} for the same quality "
                 "(PCHIP Bjøntegaard delta over the PSNR-Y, or SSIM-Y, range both cover; rate "
                 "is what was sent, keyframe included).")  # fmt: skip
    lines.append("")
    header = "| clip | " + " | ".join(f"{LABELS.get(c, c)} (PSNR-Y / SSIM-Y)" for c in codecs)
    lines += [header + " |", "|" + " --- |" * (len(codecs) + 1)]
    for clip in clips:
        cells = []
        for codec in codecs:
            row = next((r for r in rows if r.clip == clip and r.codec == codec), None)
            cells.append("" if row is None else f"{_percent(row.psnr_y)} / {_percent(row.ssim_y)}")
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    lines += ["", "## Encode ms per frame at the top rung", "",
              f"One encoder thread, process pinned to {meta.get('pinned_to', 'no CPU')}; "
              "the budget is one frame interval.",
              "", "| clip | codec | target kbit/s | p50 ms | p95 ms | budget ms | p95 within |",
              "| --- | --- | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
    for top in top_rung(points):
        lines.append(
            f"| {top['clip']} | {LABELS.get(top['codec'], top['codec'])} | "
            f"{top['target_bps'] / 1000:.0f} | {top['encode_ms_p50']:.1f} | "
            f"{top['encode_ms_p95']:.1f} | {top['budget_ms']:.1f} | "
            f"{'yes' if top['within_budget'] else 'no'} |"
        )
    if budget:
        lines += ["", "## Encode ms per frame on real pictures scaled to "
                  f"{budget[0].width}x{budget[0].height}@{budget[0].fps:g}", "",
                  "| clip | codec | target kbit/s | sent kbit/s | PSNR-Y dB | p50 ms | p95 ms "
                  "| p95 within budget |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
        for p in budget:
            budget_ms = 1000.0 / p.fps
            lines.append(
                f"| {p.clip} | {LABELS.get(p.codec, p.codec)} | {p.target_bps / 1000:.0f} | "
                f"{p.rate_bps / 1000:.0f} | {p.psnr_y:.2f} | {p.encode_ms_p50:.1f} | "
                f"{p.encode_ms_p95:.1f} | {'yes' if p.encode_ms_p95 <= budget_ms else 'no'} "
                f"({budget_ms:.1f} ms) |"
            )
    lines += ["", "## Rate-quality points", "",
              "| clip | codec | target kbit/s | sent kbit/s | PSNR-Y dB | SSIM-Y | "
              "encode ms p50 | p95 |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for clip in clips:
        for codec in _order([p.codec for p in points]):
            for p in _curve(points, clip, codec):
                lines.append(
                    f"| {clip} | {LABELS.get(codec, codec)} | {p.target_bps / 1000:.0f} | "
                    f"{p.rate_bps / 1000:.0f} | {p.psnr_y:.2f} | {p.ssim_y:.4f} | "
                    f"{p.encode_ms_p50:.1f} | {p.encode_ms_p95:.1f} |"
                )
    lines += ["", "## How it was measured", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    return "\n".join(lines) + "\n"


def plot(points: Sequence[RdPoint], path: Path) -> Path | None:
    """PSNR-Y against the rate sent (log scale), one panel per clip, one line per codec."""
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    clips = _order([p.clip for p in points])
    fig, axes = plt.subplots(1, len(clips), figsize=(4.2 * len(clips), 3.6), squeeze=False)
    for ax, clip in zip(axes[0], clips, strict=True):
        for codec in _order([p.codec for p in points]):
            curve = _curve(points, clip, codec)
            if curve:
                ax.plot([p.rate_bps / 1000 for p in curve], [p.psnr_y for p in curve],
                        marker="o", label=LABELS.get(codec, codec))  # fmt: skip
        first = next(p for p in points if p.clip == clip)
        ax.set_title(f"{clip} ({first.width}x{first.height}@{first.fps:g})", fontsize=9)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("kbit/s sent")
        ax.set_ylabel("PSNR-Y (dB)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def write(points: Sequence[RdPoint], out: Path | str, meta: dict[str, Any] | None = None,
          *, budget: Sequence[RdPoint] = (), stem: str = "codecs") -> CodecReport:  # fmt: skip
    """``out/<stem>.json``, ``.md`` and ``.png`` for the points of a sweep; ``budget``:
    points measured for encode time only (listed with their frame budget, not in BD-rate)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"anchor": ANCHOR, **(meta or {})}
    rows = bd_table(points, meta["anchor"])
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps({
        "meta": meta,
        "bd_rate": [{"clip": r.clip, "codec": r.codec, "anchor": meta["anchor"],
                     "psnr_y_percent": r.psnr_y, "ssim_y_percent": r.ssim_y} for r in rows],
        "top_rung": top_rung(points),
        "points": [p.to_dict() for p in points],
        "budget_points": [p.to_dict() for p in budget],
    }, indent=1))  # fmt: skip
    md_path = out / f"{stem}.md"
    md_path.write_text(markdown(points, rows, meta, budget))
    return CodecReport(json_path, md_path, plot(points, out / f"{stem}.png"))
