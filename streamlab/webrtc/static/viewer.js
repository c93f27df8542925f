// streamlab viewer: WHEP playback, detection overlay from the data channel, live stats.
// State for tests and tools: window.streamlab = {state, stats, overlayDrawn, latencies}.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const $ = (id) => document.getElementById(id);
  const video = $("video"), overlay = $("overlay"), probe = $("probe");
  const S = (window.streamlab = { state: "idle", stats: {}, overlayDrawn: 0, latencies: [], analysis: null });
  let pc = null, location_ = null, retry = null, wanted = false, last = null;

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h["Authorization"] = "Bearer " + token;
    return h;
  }
  function setState(text, bad) {
    S.state = text; $("state").textContent = text; $("state").className = bad ? "bad" : "";
  }

  async function loadStreams() {
    const response = await fetch("/api/streams", { headers: headers() });
    if (!response.ok) { setState("cannot list streams: " + response.status, true); return; }
    const body = await response.json();
    const select = $("streams"); select.innerHTML = "";
    for (const s of body.streams) {
      const o = document.createElement("option"); o.value = s.name;
      o.textContent = s.name + " (" + s.delivery.codec + ")"; select.appendChild(o);
    }
    const chosen = params.get("stream");
    if (chosen) select.value = chosen;
  }

  function waitForIce(peer) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (peer.iceGatheringState === "complete") resolve(); };
      peer.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 2000);
    });
  }

  async function play() {
    wanted = true;
    await stop(false);
    const name = $("streams").value;
    if (!name) { setState("no stream", true); return; }
    setState("connecting");
    const peer = (pc = new RTCPeerConnection({ iceServers: [] }));
    peer.addTransceiver("video", { direction: "recvonly" });
    const channel = peer.createDataChannel("analysis");
    channel.onmessage = (event) => { S.analysis = JSON.parse(event.data); drawOverlay(); };
    peer.ontrack = (event) => { video.srcObject = event.streams[0] || new MediaStream([event.track]); };
    peer.onconnectionstatechange = () => {
      if (peer !== pc) return;
      setState(peer.connectionState, peer.connectionState === "failed");
      if (["failed", "disconnected"].includes(peer.connectionState) && wanted) scheduleRetry();
    };
    await peer.setLocalDescription(await peer.createOffer());
    await waitForIce(peer);
    let response;
    try {
      response = await fetch("/whep/" + encodeURIComponent(name), {
        method: "POST", body: peer.localDescription.sdp, headers: headers({ "Content-Type": "application/sdp" }),
      });
    } catch (error) { setState("server unreachable", true); scheduleRetry(); return; }
    if (response.status !== 201) { setState("refused: " + response.status + " " + (await response.text()), true); return; }
    location_ = response.headers.get("Location");
    await peer.setRemoteDescription({ type: "answer", sdp: await response.text() });
  }

  function scheduleRetry() {
    if (retry) return;
    retry = setTimeout(() => { retry = null; if (wanted) play(); }, 1000);
  }

  async function stop(userAsked) {
    if (userAsked) wanted = false;
    const peer = pc, where = location_;
    pc = null; location_ = null; last = null;
    if (where) fetch(where, { method: "DELETE", headers: headers(), keepalive: true }).catch(() => {});
    if (peer) peer.close();
    if (userAsked) setState("stopped");
  }

  function drawOverlay() {
    const ctx = overlay.getContext("2d");
    const w = (overlay.width = overlay.clientWidth), h = (overlay.height = overlay.clientHeight);
    ctx.clearRect(0, 0, w, h);
    const result = S.analysis && S.analysis.analysis;
    if (!result || !$("boxes").checked || !result.width) return;
    const sx = w / result.width, sy = h / result.height;
    ctx.lineWidth = 2; ctx.font = "12px system-ui";
    for (const d of result.detections) {
      ctx.strokeStyle = d.label === "person" ? "#0f0" : d.label === "face" ? "#f80" : "#0cf";
      ctx.strokeRect(d.x * sx, d.y * sy, d.w * sx, d.h * sy);
      ctx.fillStyle = ctx.strokeStyle; ctx.fillText(d.label, d.x * sx + 2, Math.max(10, d.y * sy - 3));
    }
    if (result.detections.length) S.overlayDrawn++;
  }

  function readLatency() {
    const width = video.videoWidth, height = video.videoHeight;
    if (!width) return;
    // only the top-left corner where the code sits (see streamlab/framecode.py region())
    const cell = Math.max(8, Math.floor(width / 40));
    const w = Math.min(width, 14 * cell), h = Math.min(height, 8 * cell);
    if (probe.width !== w || probe.height !== h) { probe.width = w; probe.height = h; }
    const ctx = probe.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, w, h, 0, 0, w, h);
    const now = Date.now();
    const code = readFrameCode(ctx.getImageData(0, 0, w, h), w, h, now, width);
    if (code) {
      S.latencies.push(now - code.capturedMs);
      if (S.latencies.length > 300) S.latencies.shift();
    }
  }
  if (video.requestVideoFrameCallback) {
    const onFrame = () => { readLatency(); video.requestVideoFrameCallback(onFrame); };
    video.requestVideoFrameCallback(onFrame);
  } else {
    setInterval(readLatency, 100);
  }

  async function updateStats() {
    if (!pc) return;
    const report = await pc.getStats();
    let inbound = null, codecs = {};
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
      if (s.type === "codec") codecs[s.id] = s.mimeType;
    });
    if (!inbound) return;
    const now = performance.now();
    const delta = (key) => (last ? (inbound[key] || 0) - (last[key] || 0) : 0);
    const seconds = last ? (now - last.at) / 1000 : 0;
    const emitted = delta("jitterBufferEmittedCount"), decoded = delta("framesDecoded");
    const sorted = S.latencies.slice().sort((a, b) => a - b);
    const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null);
    S.stats = {
      codec: codecs[inbound.codecId] || "?", fps: inbound.framesPerSecond || 0,
      framesDecoded: inbound.framesDecoded || 0, framesDropped: inbound.framesDropped || 0,
      kbps: seconds ? Math.round((delta("bytesReceived") * 8) / 1000 / seconds) : 0,
      size: video.videoWidth + "x" + video.videoHeight,
      latencyP50: pct(0.5), latencyP95: pct(0.95),
      jitterBufferMs: emitted ? Math.round((1000 * delta("jitterBufferDelay")) / emitted) : null,
      decodeMs: decoded ? +((1000 * delta("totalDecodeTime")) / decoded).toFixed(1) : null,
      freezes: inbound.freezeCount || 0, packetsLost: inbound.packetsLost || 0,
      keyframes: inbound.keyFramesDecoded || 0, pli: inbound.pliCount || 0, nack: inbound.nackCount || 0,
      analysisLagFrames: S.analysis ? S.analysis.lag_frames : null,
    };
    last = Object.assign({ at: now }, inbound);
    const rows = Object.entries(S.stats).map(([k, v]) => "<tr><td>" + k + "</td><td>" + (v === null || v === undefined ? "–" : v) + "</td></tr>");
    $("stats").tBodies[0].innerHTML = rows.join("");
  }
  setInterval(updateStats, 1000);

  $("play").onclick = play;
  $("stop").onclick = () => stop(true);
  window.addEventListener("beforeunload", () => stop(true));
  window.addEventListener("resize", drawOverlay);
  loadStreams().then(() => { if (params.get("autoplay") !== "0" && $("streams").value) play(); });
})();
