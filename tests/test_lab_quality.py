"""Quality measured from the lab: a stream served with measure_quality, a quality viewer
scoring what it sees (real WHEP peer, real encoder), LivePlot's psnr and ssim."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import streamlab.lab as lab
from streamlab.lab.serve import ServeError

SOURCE = "synthetic://?size=640x480&fps=30&objects=2"


async def until(check: Callable[[], Any], within_s: float = 15.0) -> None:
    for _ in range(int(within_s / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {within_s} s")


async def test_a_quality_viewer_scores_what_it_sees_and_the_plot_shows_it() -> None:
    served = lab.serve(SOURCE, name="lq1", measure_quality=True)
    viewer = await served.quality_viewer()
    assert served.quality_viewers == [viewer]
    plot = lab.LivePlot(served, metrics=("fps", "psnr", "ssim"), hz=4)
    await until(lambda: (viewer.quality()["quality_frames"] or 0) >= 20)
    figures = viewer.quality()
    assert 15 <= figures["psnr_y_mean_db"] <= 50, figures
    assert figures["psnr_y_p5_db"] <= figures["psnr_y_mean_db"]
    assert 0 < figures["ssim_y_mean"] <= 1
    assert 0 < figures["quality_sampled"] <= 1
    assert figures["frames"] >= figures["frames_coded"] >= figures["quality_frames"] > 0
    assert figures["freeze_count"] is not None and figures["harmonic_fps"] > 0
    assert viewer.sizes == [(640, 480)]

    def psnr_rows() -> Any:
        data = plot.data()
        return data[data.metric == "psnr"]

    await until(lambda: len(psnr_rows()) >= 2)
    psnr = psnr_rows()
    assert set(psnr["series"]) == {viewer.label}
    assert psnr["value"].between(15, 50).all(), psnr
    assert {"fps", "ssim"} <= set(plot.data()["metric"])

    folder = served.reference.folder if served.reference else None
    assert folder is not None and any(folder.iterdir())
    await served.stop()
    assert viewer.closed and served.quality_viewers == []
    assert not folder.exists(), "the reference folder goes with the stream"
    assert viewer.quality()["quality_frames"] >= figures["quality_frames"]  # still readable
    await viewer.close()  # idempotent
    await plot.stop()


async def test_quality_of_an_unmeasured_stream_is_refused_in_one_line() -> None:
    served = await lab.serve(SOURCE, name="lq2").ready()
    with pytest.raises(ServeError, match=r"measure_quality=True") as refused:
        await served.quality_viewer()
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="'psnr' needs a stream served with"):
        lab.LivePlot(served, metrics=("fps", "psnr"))
    await served.stop()
