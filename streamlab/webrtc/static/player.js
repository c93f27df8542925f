// streamlab player: WHEP playback with a frame-accurate detection overlay and live stats.
// One ES module for the viewer page (index.html -> viewer.js) and the notebook's anywidget
// Player (streamlab/lab/player.py: the default export is the anywidget {initialize, render}).
// It needs readFrameCode from framecode.js on globalThis (the page loads it first; the
// widget's ESM is framecode.js followed by this file).
"use strict";

const STYLE = `
.streamlab-player { position: relative; display: inline-flex; gap: 10px; align-items: flex-start;
  font: 12px/1.35 system-ui, sans-serif; color: #ddd; background: #111; padding: 6px;
  border-radius: 4px; max-width: 100%; }
.streamlab-player .sl-stage { position: relative; background: #000; line-height: 0; }
.streamlab-player video { display: block; max-width: 100%; }
.streamlab-player canvas.sl-overlay { position: absolute; inset: 0; width: 100%; height: 100%;
  pointer-events: none; }
.streamlab-player .sl-badge { position: absolute; left: 6px; bottom: 6px; line-height: 1.2;
  padding: 1px 6px; border-radius: 3px; background: rgba(0,0,0,.6); color: #8c8; }
.streamlab-player .sl-badge.bad { color: #e66; }
.streamlab-player .sl-sound { position: absolute; right: 6px; bottom: 6px; }
.streamlab-player table { border-collapse: collapse; min-width: 190px; }
.streamlab-player td { padding: 1px 6px; } .streamlab-player td:first-child { color: #888; }
`;
const RETRY_MS = 2000;
const RTP_WRAP = 4294967296;
const COLORS = { person: "#0f0", face: "#f80" };

function ensureStyle(doc) {
  if (doc.getElementById("streamlab-player-style")) return;
  const style = doc.createElement("style");
  style.id = "streamlab-player-style";
  style.textContent = STYLE;
  doc.head.appendChild(style);
}

// signed distance a - b between two 32-bit RTP timestamps (handles the wrap)
function rtpDelta(a, b) {
  let d = (((a - b) % RTP_WRAP) + RTP_WRAP) % RTP_WRAP;
  if (d >= RTP_WRAP / 2) d -= RTP_WRAP;
  return d;
}

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * Create a player inside `container`.
 * options: {url, token, overlay=true, stats=true, autoplay=true, width, onState(state),
 *           onStats(stats)}
 * Returns {play(), stop(userAsked), destroy(), setUrl(url, token), setOverlay(b),
 *          setStopped(reason), state, stats, overlayDrawn, latencies, video}.
 */
export function createPlayer(container, options) {
  const doc = container.ownerDocument || document;
  ensureStyle(doc);
  const opts = Object.assign({ overlay: true, stats: true, autoplay: true }, options || {});
  const root = doc.createElement("div");
  root.className = "streamlab-player";
  const stage = doc.createElement("div");
  stage.className = "sl-stage";
  const video = doc.createElement("video");
  video.autoplay = true; video.muted = true; video.playsInline = true;
  video.setAttribute("playsinline", "");
  if (opts.width) video.style.width = opts.width + "px";
  const canvas = doc.createElement("canvas");
  canvas.className = "sl-overlay";
  const badge = doc.createElement("span");
  badge.className = "sl-badge";
  // the camera's sound plays muted (as browsers require) until the user unmutes it
  const sound = doc.createElement("button");
  sound.className = "sl-sound";
  sound.textContent = "unmute";
  sound.style.display = "none";  // shown when the stream has sound
  sound.onclick = () => { video.muted = !video.muted; sound.textContent = video.muted ? "unmute" : "mute"; };
  stage.append(video, canvas, badge, sound);
  const table = doc.createElement("table");
  table.appendChild(doc.createElement("tbody"));
  if (!opts.stats) table.style.display = "none";
  root.append(stage, table);
  container.appendChild(root);
  const probe = doc.createElement("canvas");

  const P = {
    state: "idle", stats: {}, overlayDrawn: 0, overlayExact: 0, burnedIn: false, latencies: [], analysis: null,
    framesShown: 0, video, root, sizeChanges: [],
    get pc() { return pc; }, // the live RTCPeerConnection, for getStats in tools
  };
  let pc = null, where = null, retry = null, wanted = false, last = null, destroyed = false, janus = null;
  let url = opts.url, token = opts.token, overlayOn = opts.overlay, stoppedReason = null;
  let results = []; // analysis results by the RTP timestamp of the frame they describe
  let shownRtp = null, lastSize = "", shownTimes = [];

  function setState(text, bad) {
    P.state = text;
    badge.textContent = text;
    badge.className = "sl-badge" + (bad ? " bad" : "");
    badge.style.display = text === "connected" ? "none" : "";
    if (opts.onState) opts.onState(text);
  }
  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h["Authorization"] = "Bearer " + token;
    return h;
  }
  function waitForIce(peer) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      peer.addEventListener("icegatheringstatechange", () => {
        if (peer.iceGatheringState === "complete") resolve();
      });
      setTimeout(resolve, 2000);
    });
  }
  function scheduleRetry() {
    if (retry || destroyed || !wanted || stoppedReason) return;
    retry = setTimeout(() => { retry = null; if (wanted) play(); }, RETRY_MS);
  }

  function onMessage(event) {
    let message;
    try { message = JSON.parse(event.data); } catch (e) { return; }
    if (message.type === "reconnect") { play(); return; }
    if (message.type && message.type !== "analysis") return;
    P.analysis = message;
    P.burnedIn = !!message.burned;  // the server drew the boxes into the video: draw none
    const result = message.analysis;
    if (result && result.rtp_timestamp !== undefined && result.rtp_timestamp !== null) {
      const known = results.length && results[results.length - 1].rtp === result.rtp_timestamp;
      if (!known) results.push({ rtp: result.rtp_timestamp, result });
      if (results.length > 120) results.shift();
    }
    if (shownRtp === null) drawOverlay(null); // no frame clock: the latest boxes
  }

  async function play() {
    wanted = true;
    stoppedReason = null;
    await stop(false);
    if (!url) { setState("waiting for the server"); return; }  // plays when the URL is set
    setState("connecting");
    const peer = (pc = new RTCPeerConnection({ iceServers: [] }));
    const media = new MediaStream();  // the picture and, when the stream has it, the sound
    sound.style.display = "none";
    peer.ontrack = (event) => {
      media.addTrack(event.track);
      if (event.track.kind === "audio") sound.style.display = "";
      if (video.srcObject !== media) video.srcObject = media;
      const started = video.play();
      if (started && started.catch) started.catch(() => {});
    };
    peer.onconnectionstatechange = () => {
      if (peer !== pc) return;
      const state = peer.connectionState;
      setState(state, state === "failed");
      if ((state === "failed" || state === "disconnected") && wanted) { stop(false); scheduleRetry(); }
    };
    if (url.startsWith("janus:")) return playJanus(peer);
    peer.addTransceiver("video", { direction: "recvonly" });
    peer.addTransceiver("audio", { direction: "recvonly" });
    const channel = peer.createDataChannel("analysis");
    channel.onmessage = onMessage;
    try {
      await peer.setLocalDescription(await peer.createOffer());
      await waitForIce(peer);
      if (peer !== pc) return;
      const response = await fetch(url, {
        method: "POST", body: peer.localDescription.sdp,
        headers: headers({ "Content-Type": "application/sdp" }),
      });
      if (response.status !== 201) {
        const text = (await response.text()).trim();
        setState("refused: " + response.status + " " + text, true);
        if (peer === pc) { await stop(false); scheduleRetry(); }
        return;
      }
      const location = response.headers.get("Location");
      if (location) where = new URL(location, new URL(url, doc.baseURI)).href;
      const answer = await response.text();
      if (peer !== pc) return;
      await peer.setRemoteDescription({ type: "answer", sdp: answer });
    } catch (error) {
      if (peer !== pc) return;
      setState("unreachable: " + (error && error.message ? error.message : error), true);
      await stop(false);
      scheduleRetry();
    }
  }

  // through a Janus mountpoint: url "janus:http://HOST:8088/janus?id=N" (janus.js)
  async function playJanus(peer) {
    try {
      const watchJanus = globalThis.streamlabWatchJanus || (await import("./janus.js")).watchJanus;
      const session = await watchJanus(peer, url.slice("janus:".length), onMessage);
      if (peer !== pc) { session.hangup(); return; }
      janus = session;
    } catch (error) {
      if (peer !== pc) return;
      setState("unreachable: " + (error && error.message ? error.message : error), true);
      await stop(false);
      scheduleRetry();
    }
  }

  async function stop(userAsked) {
    if (userAsked) {
      wanted = false;
      if (retry) { clearTimeout(retry); retry = null; }
    }
    const peer = pc, session = where;
    pc = null; where = null; last = null; results = [];
    if (janus) { janus.hangup(); janus = null; }
    if (session) {
      fetch(session, { method: "DELETE", headers: headers(), keepalive: true }).catch(() => {});
    }
    if (peer) peer.close();
    if (userAsked) setState("stopped");
  }

  // the newest analysis describing a frame not newer than the shown one (exact when the
  // shown frame itself was analysed); without RTP timestamps: the latest result
  function resultFor(rtp) {
    if (rtp === null || rtp === undefined || !results.length) {
      return P.analysis && P.analysis.analysis ? { result: P.analysis.analysis, exact: false } : null;
    }
    for (let i = results.length - 1; i >= 0; i--) {
      const d = rtpDelta(rtp, results[i].rtp);
      if (d >= 0) return { result: results[i].result, exact: d === 0 };
    }
    return null;
  }

  function drawOverlay(rtp) {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    if (!overlayOn || P.burnedIn) return;
    const found = resultFor(rtp);
    const result = found && found.result;
    if (!result || !result.width || !result.detections) return;
    const sx = w / result.width, sy = h / result.height;
    ctx.lineWidth = 2; ctx.font = "12px system-ui";
    for (const d of result.detections) {
      ctx.strokeStyle = COLORS[d.label] || "#0cf";
      ctx.strokeRect(d.x * sx, d.y * sy, d.w * sx, d.h * sy);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillText(d.label, d.x * sx + 2, Math.max(10, d.y * sy - 3));
    }
    if (result.detections.length) {
      P.overlayDrawn++;
      if (found.exact) P.overlayExact++;
    }
  }

  function readLatency() {
    const width = video.videoWidth, height = video.videoHeight;
    if (!width || typeof globalThis.readFrameCode !== "function") return;
    // only the top-left corner where the code sits (see streamlab/framecode.py region())
    const cell = Math.max(8, Math.floor(width / 40));
    const w = Math.min(width, 14 * cell), h = Math.min(height, 8 * cell);
    if (probe.width !== w || probe.height !== h) { probe.width = w; probe.height = h; }
    const ctx = probe.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, w, h, 0, 0, w, h);
    const now = Date.now();
    const code = globalThis.readFrameCode(ctx.getImageData(0, 0, w, h), w, h, now, width);
    if (code) {
      P.latencies.push(now - code.capturedMs);
      if (P.latencies.length > 300) P.latencies.shift();
    }
  }

  function onFrame(now, metadata) {
    if (destroyed) return;
    P.framesShown++;
    shownTimes.push(now);
    while (shownTimes.length && now - shownTimes[0] > 2000) shownTimes.shift();
    const size = video.videoWidth + "x" + video.videoHeight;
    if (size !== lastSize) {
      P.sizeChanges.push({ size, at: Date.now() });
      if (P.sizeChanges.length > 50) P.sizeChanges.shift();
      lastSize = size;
    }
    shownRtp = metadata && metadata.rtpTimestamp !== undefined ? metadata.rtpTimestamp : null;
    drawOverlay(shownRtp);
    readLatency();
    video.requestVideoFrameCallback(onFrame);
  }
  let poll = null;
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
  else poll = setInterval(() => { readLatency(); drawOverlay(null); }, 100);

  async function updateStats() {
    if (!pc || destroyed) return;
    const report = await pc.getStats();
    let inbound = null;
    const codecs = {};
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
      if (s.type === "codec") codecs[s.id] = s.mimeType;
    });
    if (!inbound) return;
    const now = performance.now();
    const delta = (key) => (last ? (inbound[key] || 0) - (last[key] || 0) : 0);
    const seconds = last ? (now - last.at) / 1000 : 0;
    const emitted = delta("jitterBufferEmittedCount"), decoded = delta("framesDecoded");
    const recent = P.latencies.slice(-60);
    const message = P.analysis;
    const span = shownTimes.length > 1 ? shownTimes[shownTimes.length - 1] - shownTimes[0] : 0;
    P.stats = {
      codec: codecs[inbound.codecId] || "?",
      fps: inbound.framesPerSecond || 0,
      shownFps: span ? +((1000 * (shownTimes.length - 1)) / span).toFixed(1) : 0,
      framesDecoded: inbound.framesDecoded || 0,
      framesDropped: inbound.framesDropped || 0,
      kbps: seconds ? Math.round((delta("bytesReceived") * 8) / 1000 / seconds) : 0,
      size: video.videoWidth + "x" + video.videoHeight,
      latencyP50: percentile(recent, 0.5), latencyP95: percentile(recent, 0.95),
      jitterBufferMs: emitted ? Math.round((1000 * delta("jitterBufferDelay")) / emitted) : null,
      decodeMs: decoded ? +((1000 * delta("totalDecodeTime")) / decoded).toFixed(1) : null,
      freezes: inbound.freezeCount || 0, packetsLost: inbound.packetsLost || 0,
      keyframes: inbound.keyFramesDecoded || 0, pli: inbound.pliCount || 0,
      nack: inbound.nackCount || 0,
      analysisLagFrames: message && message.lag_frames !== undefined ? message.lag_frames : null,
      analysisLagMs: message && message.analysis && message.analysis.captured_at
        ? Math.round(message.captured_ms - 1000 * message.analysis.captured_at) : null,
      overlayDrawn: P.overlayDrawn, overlayExact: P.overlayExact,
    };
    last = Object.assign({ at: now }, inbound);
    const rows = Object.entries(P.stats).map(([k, v]) =>
      "<tr><td>" + k + "</td><td>" + (v === null || v === undefined ? "–" : v) + "</td></tr>");
    table.tBodies[0].innerHTML = rows.join("");
    if (opts.onStats) opts.onStats(P.stats);
  }
  const timer = setInterval(() => { updateStats().catch(() => {}); }, 1000);

  P.play = play;
  P.stop = stop;
  // returns whether anything changed (the caller decides whether to play again)
  P.setUrl = (newUrl, newToken) => {
    const changed = newUrl !== url || newToken !== token;
    url = newUrl; token = newToken;
    return changed;
  };
  P.setOverlay = (on) => { overlayOn = !!on; drawOverlay(shownRtp); };
  P.setStatsVisible = (on) => { table.style.display = on ? "" : "none"; };
  // the stream ended on the server: no retries until play() is asked again
  P.setStopped = (reason) => {
    stoppedReason = reason || null;
    if (!stoppedReason) { if (!pc) play(); return; }
    stop(false).then(() => setState("stopped: " + stoppedReason, true));
  };
  P.destroy = () => {
    destroyed = true;
    clearInterval(timer);
    if (poll) clearInterval(poll);
    stop(true);
    root.remove();
    const all = globalThis.streamlabPlayers || [];
    const i = all.indexOf(P);
    if (i >= 0) all.splice(i, 1);
  };
  (globalThis.streamlabPlayers = globalThis.streamlabPlayers || []).push(P);
  setState("idle");
  if (opts.autoplay && url) play();
  return P;
}

// anywidget: one peer connection per view (two cells showing one widget = two views)
function render({ model, el }) {
  let statsSent = 0;
  const player = createPlayer(el, {
    url: model.get("whep_url"),
    token: model.get("token") || null,
    overlay: model.get("overlay"),
    stats: model.get("show_stats"),
    autoplay: false,
    onState: (state) => { model.set("state", state); model.save_changes(); },
    onStats: (stats) => {
      const now = Date.now();
      if (now - statsSent < 900) return;
      statsSent = now;
      model.set("stats", Object.assign({}, stats, { sizeChanges: player.sizeChanges.slice(-10) }));
      model.save_changes();
    },
  });
  const onUrl = () => {
    if (player.setUrl(model.get("whep_url"), model.get("token") || null)) player.play();
  };
  const onOverlay = () => player.setOverlay(model.get("overlay"));
  const onStatsVisible = () => player.setStatsVisible(model.get("show_stats"));
  const onStopped = () => player.setStopped(model.get("stopped"));
  model.on("change:whep_url", onUrl);
  model.on("change:token", onUrl);
  model.on("change:overlay", onOverlay);
  model.on("change:show_stats", onStatsVisible);
  model.on("change:stopped", onStopped);
  if (model.get("stopped")) player.setStopped(model.get("stopped"));
  else player.play();
  return () => {
    model.off("change:whep_url", onUrl);
    model.off("change:token", onUrl);
    model.off("change:overlay", onOverlay);
    model.off("change:show_stats", onStatsVisible);
    model.off("change:stopped", onStopped);
    player.destroy();
  };
}

export default { render };
