// Watching a Janus Streaming mountpoint (streamlab forwards its streams there: README
// "Beyond one machine"). Janus 1.1.2 makes the offer: watch -> Janus's offer (an event,
// read by long-polling the session) -> our answer with start. The session is kept alive
// by the same long poll until hangup().

function waitForIce(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 2000);
  });
}

/**
 * Watch the mountpoint `spec` names ("http://HOST:8088/janus?id=N") on `peer`; analysis
 * messages from Janus's data channel go to `onMessage(event)`. Resolves to {hangup()} once
 * the answer is sent; rejects with an Error naming what Janus said.
 */
export async function watchJanus(peer, spec, onMessage) {
  const parsed = new URL(spec);
  const id = Number(parsed.searchParams.get("id"));
  if (!id) throw new Error("no mountpoint id in " + spec);
  const base = parsed.origin + parsed.pathname.replace(/\/$/, "");
  const transaction = () => Math.random().toString(36).slice(2, 14);
  const timeout = (ms) => (AbortSignal.timeout ? AbortSignal.timeout(ms) : undefined);

  async function post(path, body) {
    const response = await fetch(base + path, {
      method: "POST", body: JSON.stringify(Object.assign({ transaction: transaction() }, body)),
      signal: timeout(5000),
    });
    const reply = await response.json();
    if (reply.janus === "error") throw new Error("Janus: " + reply.error.reason);
    return reply;
  }

  const session = (await post("", { janus: "create" })).data.id;
  const handle = (await post("/" + session, { janus: "attach", plugin: "janus.plugin.streaming" })).data.id;
  let open = true;

  async function nextEvent() {
    while (open) {
      const response = await fetch(base + "/" + session + "?maxev=1&rid=" + Date.now(), { signal: timeout(40000) });
      let event = await response.json();
      if (Array.isArray(event)) event = event[0] || {};
      if (event.janus === "error") throw new Error("Janus: " + event.error.reason);
      if (event.janus === "event" && event.sender === handle) return event;
    }
    return null;
  }

  const message = (body, jsep) => post("/" + session + "/" + handle,
    jsep ? { janus: "message", body, jsep } : { janus: "message", body });
  const hangup = () => {
    if (!open) return;
    open = false;
    fetch(base + "/" + session, {
      method: "POST", body: JSON.stringify({ janus: "destroy", transaction: transaction() }), keepalive: true,
    }).catch(() => {});
  };
  try {
    await message({ request: "watch", id });
    let offer = null;
    while (!offer) {
      const event = await nextEvent();
      if (!event) throw new Error("stopped");
      const data = (event.plugindata && event.plugindata.data) || {};
      if (data.error) throw new Error("Janus: " + data.error);
      if (event.jsep && event.jsep.type === "offer") offer = event.jsep;
    }
    // Janus relays the data port's datagrams as binary messages: hand on their text
    const decoder = new TextDecoder();
    const relay = (event) => onMessage({
      data: typeof event.data === "string" ? event.data : decoder.decode(event.data),
    });
    peer.ondatachannel = (event) => { event.channel.onmessage = relay; };
    await peer.setRemoteDescription(offer);
    if (offer.sdp.includes("m=application")) {
      // Janus relays the mountpoint's data once a channel is open (janus.js opens this one)
      peer.createDataChannel("JanusDataChannel").onmessage = relay;
    }
    await peer.setLocalDescription(await peer.createAnswer());
    await waitForIce(peer);
    await message({ request: "start" }, { type: "answer", sdp: peer.localDescription.sdp });
  } catch (error) {
    hangup();
    throw error;
  }
  (async () => {  // the long poll keeps the session alive
    while (open) {
      try { await nextEvent(); } catch (error) { await new Promise((r) => setTimeout(r, 1000)); }
    }
  })();
  return { hangup };
}

// player.js finds it here when this file is part of the same module (the lab's Player)
globalThis.streamlabWatchJanus = watchJanus;
