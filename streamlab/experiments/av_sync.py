"""A/V sync as a browser shows it: the offset between a click heard and its flash seen.

The test camera's ``wave="sync"`` marks one frame a second (a white square in the
bottom-right corner) and clicks at that frame's own timestamp (``streamlab.camera.
sync_marks``). ``PROBE`` runs in a Chromium viewer page: once the page's ``<video>`` plays
a stream with an audio track, a Web Audio worklet finds each click's first loud sample
after silence (a ``ScriptProcessorNode`` of 256 samples where the page is not a secure
context, as plain http to another host is: no AudioWorklet there), and
``requestVideoFrameCallback`` finds each mark's first frame. Both become epoch
milliseconds of their output: the click's context time through
``AudioContext.getOutputTimestamp()`` (the moment it leaves the audio device), the frame's
``expectedDisplayTime``. ``pair_offsets`` matches each click with the nearest mark:
audio minus video, so a positive offset is audio late. ITU-R BT.1359 puts the threshold of
detectability at audio 45 ms early to 125 ms late (``DETECTABLE_MS``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DETECTABLE_MS = (-45.0, 125.0)
MAX_PAIR_MS = 450.0  # marks are a second apart: nearer than half of that is this mark's

PROBE = """
(() => {
  window.__slsync = {clicks: [], marks: [], state: "waiting"};
  const epoch = t => performance.timeOrigin + t;
  const WORKLET = `class Onset extends AudioWorkletProcessor {
    constructor() { super(); this.quiet = 0; }
    process(inputs) {
      const ch = inputs[0] && inputs[0][0];
      if (!ch) return true;
      for (let i = 0; i < ch.length; i++) {
        if (Math.abs(ch[i]) > 0.1) {
          if (this.quiet > sampleRate * 0.3) this.port.postMessage(currentTime + i / sampleRate);
          this.quiet = 0;
        } else this.quiet++;
      }
      return true;
    }
  }
  registerProcessor("sl-onset", Onset);`;
  function heard(ctx, at) {  // a click at context time ``at``: when it leaves the device
    const out = ctx.getOutputTimestamp();
    if (out.performanceTime) {
      window.__slsync.clicks.push(epoch(out.performanceTime + (at - out.contextTime) * 1000));
    }
  }
  function scriptNode(ctx) {  // no AudioWorklet outside a secure context (plain http)
    const size = 256, node = ctx.createScriptProcessor(size, 1, 1);
    let quiet = 0;
    node.onaudioprocess = e => {
      const ch = e.inputBuffer.getChannelData(0);
      const start = e.playbackTime - size / ctx.sampleRate;  // this input's context time
      for (let i = 0; i < ch.length; i++) {
        if (Math.abs(ch[i]) > 0.1) {
          if (quiet > ctx.sampleRate * 0.3) heard(ctx, start + i / ctx.sampleRate);
          quiet = 0;
        } else quiet++;
      }
    };
    return node;
  }
  async function listen(stream) {
    const ctx = new AudioContext();
    let node;
    if (ctx.audioWorklet) {
      await ctx.audioWorklet.addModule(URL.createObjectURL(
        new Blob([WORKLET], {type: "application/javascript"})));
      node = new AudioWorkletNode(ctx, "sl-onset");
      node.port.onmessage = e => heard(ctx, e.data);
    } else {
      node = scriptNode(ctx);
      window.__slsync.node = "script-processor";
    }
    const source = ctx.createMediaStreamSource(new MediaStream(stream.getAudioTracks()));
    source.connect(node);
    node.connect(ctx.destination);
    if (ctx.state !== "running") await ctx.resume();
    window.__slsync.state = ctx.state;
  }
  function watch(video) {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 4;
    const draw = canvas.getContext("2d", {willReadFrequently: true});
    let lit = false;
    const tick = (now, meta) => {
      const w = video.videoWidth, h = video.videoHeight, size = h / 8;
      if (w && h) {
        const x = w - 1.5 * size, y = h - 1.5 * size;
        draw.drawImage(video, x + size / 4, y + size / 4, size / 2, size / 2, 0, 0, 4, 4);
        const px = draw.getImageData(0, 0, 4, 4).data;
        let sum = 0;
        for (let i = 0; i < px.length; i += 4) sum += px[i] + px[i + 1] + px[i + 2];
        const bright = sum / (px.length / 4 * 3) > 128;
        if (bright && !lit) window.__slsync.marks.push(epoch(meta.expectedDisplayTime));
        lit = bright;
      }
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  }
  const start = () => {
    const video = document.querySelector("#player video") || document.querySelector("video");
    const stream = video && video.srcObject;
    if (!stream || !stream.getAudioTracks().length || !stream.getVideoTracks().length) {
      setTimeout(start, 200);
      return;
    }
    watch(video);
    listen(stream).catch(e => { window.__slsync.state = "error: " + e; });
  };
  document.addEventListener("DOMContentLoaded", start);
})();
"""
DRAIN = """() => { const s = window.__slsync || {clicks: [], marks: [], state: "absent"};
  const out = {clicks: s.clicks, marks: s.marks, state: s.state};
  s.clicks = []; s.marks = []; return out; }"""


def pair_offsets(clicks: list[float], marks: list[float]) -> list[tuple[float, float]]:
    """(click time, click minus its nearest mark) in ms for each click with a mark within
    ``MAX_PAIR_MS``; a click whose flash was never shown (or the reverse) is left out."""
    if not marks:
        return []
    shown = np.sort(np.asarray(marks, dtype=float))
    pairs = []
    for click in sorted(clicks):
        i = int(np.searchsorted(shown, click))
        near = [shown[j] for j in (i - 1, i) if 0 <= j < len(shown)]
        mark = min(near, key=lambda m: abs(click - m))
        if abs(click - mark) <= MAX_PAIR_MS:
            pairs.append((click, round(click - mark, 1)))
    return pairs


def figures(logs: list[Any]) -> dict[str, Any]:
    """``summary`` of every viewer's pairs (``logs``: ``ViewerLog``s with ``clicks`` and
    ``marks``), plus the clicks and marks that found no partner."""
    pairs = [p for log in logs for p in pair_offsets(log.clicks, log.marks)]
    out = summary([offset for _, offset in pairs])
    out["av_sync_clicks"] = sum(len(log.clicks) for log in logs)
    out["av_sync_marks"] = sum(len(log.marks) for log in logs)
    return out


def summary(offsets: list[float]) -> dict[str, Any]:
    """``av_sync_ms`` (median, audio minus video), its p5/p95, the count of pairs and the
    share of them outside the BT.1359 window (``av_sync_detectable_pct``)."""
    if not offsets:
        return {"av_sync_ms": None, "av_sync_p5_ms": None, "av_sync_p95_ms": None,
                "av_sync_pairs": 0, "av_sync_detectable_pct": None}  # fmt: skip
    values = np.asarray(offsets, dtype=float)
    low, high = DETECTABLE_MS
    outside = float(((values < low) | (values > high)).mean() * 100)
    return {
        "av_sync_ms": round(float(np.median(values)), 1),
        "av_sync_p5_ms": round(float(np.percentile(values, 5)), 1),
        "av_sync_p95_ms": round(float(np.percentile(values, 95)), 1),
        "av_sync_pairs": int(values.size),
        "av_sync_detectable_pct": round(outside, 1),
    }
