// streamlab viewer page: pick a stream, play it with the shared player module (player.js).
// State for tests and tools: window.streamlab = {state, stats, overlayDrawn, latencies, ...}.
// ?via=janus watches a forwarded stream through its Janus mountpoint (?janus=URL: Janus's
// HTTP API as this browser reaches it, when not at the address streamlab forwards to).
import { createPlayer } from "/static/player.js";

const params = new URLSearchParams(location.search);
const token = params.get("token");
const $ = (id) => document.getElementById(id);
const whep = (name) => "/whep/" + encodeURIComponent(name);
const forwards = {};  // stream name -> its first Janus forward ({target, mountpoint})

function janusUrl(name) {
  const forward = forwards[name];
  if (!forward) return null;
  const api = params.get("janus") || forward.target.replace(/^janus:/, "");
  return "janus:" + api.split("?")[0] + "?id=" + forward.mountpoint;
}

function setState(text) {
  $("state").textContent = text;
  $("state").className = /failed|refused|unreachable|cannot|no stream/.test(text) ? "bad" : "";
}

const player = createPlayer($("player"), { token, autoplay: false, onState: setState });
window.streamlab = {
  get state() { return player.state; },
  get stats() { return player.stats; },
  get overlayDrawn() { return player.overlayDrawn; },
  get overlayExact() { return player.overlayExact; },
  get burnedIn() { return player.burnedIn; },
  get latencies() { return player.latencies; },
  get analysis() { return player.analysis; },
  get sizeChanges() { return player.sizeChanges; },
  get pc() { return player.pc; },
};

async function loadStreams() {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch("/api/streams", { headers });
  if (!response.ok) { setState("cannot list streams: " + response.status); return; }
  const body = await response.json();
  const select = $("streams");
  select.innerHTML = "";
  for (const s of body.streams) {
    const option = document.createElement("option");
    option.value = s.name;
    option.textContent = s.name + " (" + s.delivery.codec + ")";
    if (s.forwards && s.forwards.length) forwards[s.name] = s.forwards[0];
    select.appendChild(option);
  }
  const chosen = params.get("stream");
  if (chosen) select.value = chosen;
}

function play() {
  const name = $("streams").value;
  if (!name) { setState("no stream"); return; }
  const viaJanus = params.get("via") === "janus";
  if (viaJanus && !forwards[name]) { setState("no stream forwarded to Janus: " + name); return; }
  player.setUrl(viaJanus ? janusUrl(name) : whep(name), token);
  player.play();
}

$("play").onclick = play;
$("stop").onclick = () => player.stop(true);
$("streams").onchange = () => { if (player.state !== "stopped") play(); };
$("boxes").onchange = () => player.setOverlay($("boxes").checked);
window.addEventListener("beforeunload", () => player.stop(true));
loadStreams().then(() => { if (params.get("autoplay") !== "0" && $("streams").value) play(); });
