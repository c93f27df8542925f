"""``playout_delay`` in real headless Chromium: two viewers of one stream, one told to show
frames at once (the default) and one told to hold them 300 ms; Chromium's own jitter-buffer
figures (getStats) follow what each was told, and change again when told otherwise."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from streamlab.testing import served_by_cli

pytestmark = pytest.mark.browser

WATCH = """
async (whep) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch(whep, {method: "POST", body: pc.localDescription.sdp,
                                       headers: {"Content-Type": "application/sdp"}});
  if (response.status !== 201) return response.status;
  await pc.setRemoteDescription({type: "answer", sdp: await response.text()});
  window.viewers = (window.viewers || []).concat([pc]);
  return 201;
}
"""

HELD = """
async (index) => {
  let inbound = null;
  (await window.viewers[index].getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
  });
  return inbound ? [inbound.jitterBufferDelay, inbound.jitterBufferEmittedCount] : [0, 0];
}
"""


@pytest.fixture
def served() -> Iterator[str]:
    with served_by_cli("--source", "synthetic://?size=640x480&fps=30", "--name", "demo") as url:
        yield url


def call(url: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def held_ms(page: Any, index: int, seconds: float = 2.0) -> float:
    """Chromium's mean jitter-buffer time per frame of viewer ``index`` over ``seconds``."""
    before = page.evaluate(HELD, index)
    page.wait_for_timeout(seconds * 1000)
    after = page.evaluate(HELD, index)
    frames = after[1] - before[1]
    assert frames >= 10, f"viewer {index} kept playing (>= 5 fps decoded)"
    return 1000 * (after[0] - before[0]) / frames


def test_chromium_holds_frames_as_long_as_each_viewer_is_told(served: str, chromium_page) -> None:  # type: ignore[no-untyped-def]
    page = chromium_page
    page.goto(served + "static/framecode.js")  # any page of the server's origin
    whep = served + "whep/demo"
    assert page.evaluate(WATCH, whep) == 201
    first = {v["id"] for v in call(served + "api/streams")["streams"][0]["viewers"]}
    assert page.evaluate(WATCH, whep) == 201
    listed = call(served + "api/streams")["streams"][0]["viewers"]
    second = next(v["id"] for v in listed if v["id"] not in first)
    assert {v["playout_delay"] for v in listed} == {"0"}, "Chromium offered the extension"
    page.wait_for_function(
        "Promise.all([0, 1].map(async (i) => { let n = 0; (await window.viewers[i].getStats())"
        ".forEach((s) => { if (s.type === 'inbound-rtp') n = s.framesDecoded; }); return n; }))"
        ".then((n) => n.every((x) => x > 30))",
        timeout=30_000,
    )

    told = call(f"{served}api/streams/demo/viewers/{second}", "PATCH", {"playout_delay": "300"})
    assert told["playout_delay"] == "300"
    page.wait_for_timeout(1000)
    at_once, held = held_ms(page, 0), held_ms(page, 1)
    print(f"jitter buffer per frame: told 0 -> {at_once:.1f} ms, told 300 -> {held:.1f} ms")
    assert held > 150, "the 300 ms viewer's frames wait in Chromium's jitter buffer"
    assert at_once < 100, "the other viewer's frames are shown at once"

    call(f"{served}api/streams/demo/viewers/{second}", "PATCH", {"playout_delay": None})
    page.wait_for_timeout(1000)
    assert held_ms(page, 1) < 100, "following the stream again (0): shown at once"
