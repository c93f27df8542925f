"""Reports show what the viewer saw: quality columns and rate-quality small multiples."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image

from streamlab.experiments import report, results
from streamlab.experiments.runner import RunResult
from streamlab.experiments.scenario import Scenario


def run(name: str, network: str, codec: str, rung: str, kbps: float, psnr: float) -> RunResult:
    settings = {"network": network, "codec": codec, "quality": rung}
    scenario = Scenario(name, "camera:640x480@30", settings=settings)
    metrics = {"fps": 30.0, "kbps": kbps, "psnr_y_mean_db": psnr, "ssim_y_mean": 0.9531,
               "quality_sampled": 0.8, "freeze_count": 1, "harmonic_fps": 28.5, "freezes": 2}  # fmt: skip
    series = [{"t": float(t), "rx_fps": [30], "rx_kbps": [kbps], "psnr_y": [psnr]}
              for t in range(5)]  # fmt: skip
    return RunResult(scenario.to_dict(), 0, metrics=metrics, latencies_ms=[40.0, 42.0],
                     series=series)  # fmt: skip


def links_by_codecs(tmp_path: Path) -> Path:
    """Two links x two codecs x two rungs."""
    runs = [run(f"s[{n},{c},{rung}]", n, c, f"fixed:{rung}", kbps * scale, psnr + step)
            for n, scale in (("rate=300k", 1.0), ("rate=2M", 3.0))
            for c, psnr in (("vp8", 33.0), ("h264", 34.0))
            for rung, kbps, step in (("320x180", 100, 0.0), ("640x360", 200, 3.0))]  # fmt: skip
    return results.write(runs, tmp_path / "run.json")


def test_rate_quality_has_one_panel_per_link(tmp_path: Path) -> None:
    path = links_by_codecs(tmp_path)
    frame = results.frame(path)
    assert report._facet(frame) == "network"
    image = report.plot_rate_quality(frame, tmp_path / "rq.png")
    assert image is not None
    height, width = matplotlib.image.imread(image).shape[:2]
    assert width > 1.6 * height  # two panels side by side


def test_no_rate_quality_plot_without_psnr(tmp_path: Path) -> None:
    path = links_by_codecs(tmp_path)
    frame = results.frame(path).drop(columns=["psnr_y_mean_db"])
    assert report.plot_rate_quality(frame, tmp_path / "rq.png") is None


def test_the_key_table_shows_quality_and_smoothness(tmp_path: Path) -> None:
    path = links_by_codecs(tmp_path)
    table = report.key_table(results.frame(path))
    assert list(table["SSIM-Y"]) == ["0.953"] * len(table)
    assert list(table["scored"]) == ["80%"] * len(table)
    assert {"PSNR-Y dB", "freezes", "harmonic fps", "gaps >100 ms"} <= set(table.columns)
    md, _ = report.write([path], tmp_path / "out")
    assert "rate_quality.png" in md.read_text()
