"""An H.265 camera plays in Chromium through the fallback: Chromium (without a hardware
H.265 decoder) offers no H.265, so it gets the H.264 transcode of a passthrough stream, and
``/api/streams`` says why."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

import streamlab as sl
from streamlab.testing import served_by_cli

pytestmark = pytest.mark.browser


@pytest.mark.timeout(150)
def test_chromium_plays_an_h265_camera_through_the_transcode(
    chromium_browser: Any, camera_factory: Callable[..., sl.TestCamera]
) -> None:
    camera = camera_factory(codec="h265", size=(640, 480), fps=30)
    with served_by_cli("--source", camera.url, "--name", "cam", "--codec", "passthrough") as url:
        context = chromium_browser.new_context()
        page = context.new_page()
        try:
            page.goto(url)
            page.wait_for_function(
                "window.streamlab && window.streamlab.stats.framesDecoded > 60", timeout=60_000
            )
            stats = page.evaluate("JSON.parse(JSON.stringify(window.streamlab.stats))")
            api = url.split("/", 3)[:3]
            with urllib.request.urlopen("/".join(api) + "/api/streams", timeout=10) as response:
                body = json.load(response)
        finally:
            context.close()
    assert stats["codec"] == "video/H264", "Chromium offered no H.265: the H.264 transcode"
    assert stats["size"] == "640x480"
    delivery = next(s for s in body["streams"] if s["name"] == "cam")["delivery"]
    assert delivery["camera_codec"] == "hevc" and "H.265" in delivery["transcode_reason"]
    assert delivery["passthrough_units"] == 0
    assert "h264/source" in {e["key"] for e in delivery["encoders"]}
