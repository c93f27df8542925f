"""Real headless Chromium hears the camera: a PCMA camera's audio passed through untouched
(``streamlab serve``), read back from getStats ``inbound-rtp`` audio."""

from __future__ import annotations

import pytest

from streamlab.testing import served_by_cli

pytestmark = pytest.mark.browser

LISTEN = """async () => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.ontrack = e => {
    if (e.track.kind !== "audio") return;
    const audio = document.createElement("audio");
    audio.autoplay = true;
    audio.srcObject = new MediaStream([e.track]);
    document.body.appendChild(audio);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => { if (pc.iceGatheringState === "complete") r();
                           else pc.onicegatheringstatechange = () =>
                             pc.iceGatheringState === "complete" && r(); });
  const response = await fetch("/whep/cam", {method: "POST", body: pc.localDescription.sdp,
                                             headers: {"Content-Type": "application/sdp"}});
  await pc.setRemoteDescription({type: "answer", sdp: await response.text()});
  window.pc = pc;
}"""

STATS = """async () => {
  const report = await window.pc.getStats();
  let audio = null, mimes = {};
  report.forEach(s => { if (s.type === "inbound-rtp" && s.kind === "audio") audio = s;
                        if (s.type === "codec") mimes[s.id] = s.mimeType; });
  return audio && {samples: audio.totalSamplesReceived || 0, level: audio.audioLevel || 0,
                   packets: audio.packetsReceived || 0, mime: mimes[audio.codecId] || null};
}"""


def test_chromium_hears_a_pcma_camera_untouched(chromium_page, camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(audio="pcma", size=(320, 240), fps=15)
    with served_by_cli("--source", camera.url, "--name", "cam") as url:
        page = chromium_page
        page.goto(url + "healthz")  # same origin as /whep, no player of its own
        page.evaluate(LISTEN)
        page.wait_for_function(
            "window.pc && window.pc.getStats().then(r => { let n = 0; r.forEach(s => {"
            " if (s.type === 'inbound-rtp' && s.kind === 'audio') n = s.totalSamplesReceived"
            " || 0; }); window.samples = n; }) && window.samples > 16000",
            timeout=30_000,
        )
        first = page.evaluate(STATS)
        page.wait_for_timeout(1000)
        later = page.evaluate(STATS)
    print(f"chromium audio: {first} -> {later}")
    assert first["mime"] == "audio/PCMA", "the camera's own codec"
    assert later["samples"] > first["samples"], "samples keep coming"
    assert later["level"] > 0, "a tone, not silence"


def test_the_viewer_page_plays_the_sound_muted_until_unmuted(chromium_page, camera_factory) -> None:  # type: ignore[no-untyped-def]
    camera = camera_factory(audio="pcma", size=(320, 240), fps=15)
    with served_by_cli("--source", camera.url, "--name", "cam") as url:
        page = chromium_page
        page.goto(url)
        page.wait_for_function(
            "(() => { const v = document.querySelector('.streamlab-player video');"
            " return v && v.srcObject && v.srcObject.getAudioTracks().length === 1"
            " && v.srcObject.getVideoTracks().length === 1; })()",
            timeout=30_000,
        )
        video = ".streamlab-player video"
        assert page.eval_on_selector(video, "v => v.muted"), "muted until the user unmutes"
        page.click(".streamlab-player .sl-sound")
        assert not page.eval_on_selector(video, "v => v.muted")
        assert page.inner_text(".streamlab-player .sl-sound") == "mute"
