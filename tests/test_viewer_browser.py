"""The viewer page in real headless Chromium: WHEP playback, fps, overlay, latency, reload."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from streamlab.testing import served_by_cli

pytestmark = pytest.mark.browser
SYNTHETIC = "synthetic://?size=640x480&fps=30&objects=3"


@pytest.fixture
def serve() -> Iterator[object]:
    with contextlib.ExitStack() as stack:

        def start(source: str, codec: str, *more: str) -> str:
            return stack.enter_context(
                served_by_cli(
                    "--source",
                    source,
                    "--name",
                    "cam",
                    "--codec",
                    codec,
                    "--analyze",
                    "motion",
                    *more,
                )
            )

        yield start


PLAYS_FPS = 10  # "plays": 30 fps sent; a busy shared runner decodes ~17


def measure(page, seconds: float = 3.0, within: float = 10.0) -> dict:  # type: ignore[no-untyped-def]
    """The best decoded fps from getStats() over any ``seconds`` window within ``within``
    seconds (a start-up hiccup on a busy machine does not count), plus the page's figures.

    It stops at the first window, however short, that decoded ``PLAYS_FPS * seconds``
    frames: the count only grows, so that is a window of ``seconds`` at ``PLAYS_FPS`` or
    more; its fps is over the time it took."""
    page.wait_for_function("window.streamlab && window.streamlab.stats.framesDecoded > 45",
                           timeout=30_000)  # fmt: skip
    samples: list[tuple[float, int]] = []
    best = 0.0
    started = time.monotonic()
    while time.monotonic() - started < within:
        samples.append((time.monotonic(), page.evaluate("window.streamlab.stats.framesDecoded")))
        window = [s for s in samples if samples[-1][0] - s[0] <= seconds + 0.05]
        elapsed, decoded = samples[-1][0] - window[0][0], samples[-1][1] - window[0][1]
        if decoded >= PLAYS_FPS * seconds:
            best = max(best, decoded / elapsed)
            break
        if elapsed >= seconds - 0.05:
            best = max(best, decoded / elapsed)
        time.sleep(0.1)
    state = page.evaluate("JSON.parse(JSON.stringify(window.streamlab))")
    state["decoded_fps"] = best
    return state


@pytest.mark.parametrize("codec", ["vp8", "h264", "vp9", "av1", "passthrough"])
def test_viewer_plays_each_codec_with_overlay_and_latency(
    chromium_page,
    serve,
    camera_factory,
    codec: str,  # type: ignore[no-untyped-def]
) -> None:
    source = camera_factory().url if codec == "passthrough" else SYNTHETIC
    url = serve(source, codec)
    page = chromium_page
    page.goto(url)
    state = measure(page)
    print(f"{codec}: {state['decoded_fps']:.1f} fps decoded, stats {state['stats']}")
    assert state["state"] == "connected"
    mime = {"vp8": "video/VP8", "vp9": "video/VP9", "av1": "video/AV1"}.get(codec, "video/H264")
    assert state["stats"]["codec"] == mime
    assert state["decoded_fps"] >= PLAYS_FPS, "plays"
    assert state["overlayDrawn"] > 0
    assert state["latencies"], "frame codes read off the video through a canvas"
    assert 0 < state["stats"]["latencyP50"] < 2000


@pytest.mark.parametrize("burned", [False, True], ids=["default", "--overlay"])
def test_one_set_of_boxes_page_drawn_by_default_burned_in_on_request(
    chromium_page,
    serve,
    burned: bool,  # type: ignore[no-untyped-def]
) -> None:
    page = chromium_page
    page.goto(serve(SYNTHETIC, "vp8", *(["--overlay"] if burned else [])))
    measure(page, 1.0)
    page.wait_for_function("() => window.streamlab.analysis && window.streamlab.stats.framesDecoded > 60",
                           timeout=20_000)  # fmt: skip
    page.wait_for_timeout(1000)
    state = page.evaluate("JSON.parse(JSON.stringify(window.streamlab))")
    detections = state["analysis"]["analysis"]["detections"]
    print(f"burned={burned}: overlayDrawn {state['overlayDrawn']}, burnedIn {state['burnedIn']},"
          f" {len(detections)} detections in the last result")  # fmt: skip
    assert state["burnedIn"] is burned, "the server says whether its video carries the boxes"
    if burned:
        assert state["overlayDrawn"] == 0, "boxes in the video: the page draws none over them"
    else:
        assert state["overlayDrawn"] > 0, "a clean video: the page draws the boxes"


def test_reload_and_server_restart_do_not_freeze_the_page(chromium_page, serve) -> None:  # type: ignore[no-untyped-def]
    url = serve(SYNTHETIC, "vp8")
    page = chromium_page
    page.goto(url)
    measure(page, 1.0)
    page.reload()
    state = measure(page, 2.0)
    assert state["state"] == "connected"
    assert state["decoded_fps"] >= PLAYS_FPS
    page.click("#stop")
    assert page.evaluate("window.streamlab.state") == "stopped"
    page.click("#play")
    assert measure(page, 1.0)["state"] == "connected"
