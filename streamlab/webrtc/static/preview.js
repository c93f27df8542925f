// streamlab Preview (anywidget): JPEG frames arrive as custom messages with one binary
// buffer; the newest is shown as soon as the previous one has loaded, and every frame is
// acknowledged (shown or superseded) when it is taken, so the kernel keeps at most a few in
// flight.
"use strict";

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "streamlab-preview";
  root.style.cssText = "position:relative;display:inline-block;line-height:0;background:#000";
  const img = document.createElement("img");
  img.style.cssText = "display:block;max-width:100%";
  const width = model.get("width");
  if (width) img.style.width = width + "px";
  const badge = document.createElement("span");
  badge.style.cssText = "position:absolute;left:6px;bottom:6px;line-height:1.2;padding:1px 6px;" +
    "border-radius:3px;background:rgba(0,0,0,.6);color:#e66;font:12px system-ui,sans-serif";
  root.append(img, badge);
  el.appendChild(root);

  const view = { img, shown: 0, superseded: 0, times: [] };
  (globalThis.streamlabPreviews = globalThis.streamlabPreviews || []).push(view);
  let pending = null, loading = false, url = null, raf = 0, alive = true;

  const ack = (index, shown) => model.send({ type: "ack", index, shown });
  const showState = () => {
    const state = model.get("state");
    badge.textContent = state;
    badge.style.display = state === "streaming" ? "none" : "";
  };

  function onMessage(msg, buffers) {
    if (!msg || msg.type !== "frame" || !buffers || !buffers.length) return;
    if (pending) { ack(pending.index, false); view.superseded++; }
    pending = { index: msg.index, data: buffers[0] };
    if (!loading) draw(); // take it now: the ack goes back at once, the paint follows
    else if (!raf) raf = requestAnimationFrame(draw);
  }

  function draw() {
    raf = 0;
    if (!alive || !pending || loading) return;
    const frame = pending;
    pending = null;
    loading = true;
    const next = URL.createObjectURL(new Blob([frame.data], { type: "image/jpeg" }));
    ack(frame.index, true); // taken for display: the kernel may send the next one now
    img.onload = img.onerror = () => {
      loading = false;
      if (url) URL.revokeObjectURL(url);
      url = next;
      view.shown++;
      const now = performance.now();
      view.times.push(now);
      while (view.times.length && now - view.times[0] > 2000) view.times.shift();
      if (pending && !raf) raf = requestAnimationFrame(draw);
    };
    img.src = next;
  }

  // the kernel sends nothing while no view is on screen (jupyter_rfb's rule)
  const viewId = Math.random().toString(36).slice(2);
  const visibility = new IntersectionObserver((entries) =>
    model.send({ type: "visible", view: viewId, value: entries[0].isIntersecting }));
  visibility.observe(root);

  model.on("msg:custom", onMessage);
  model.on("change:state", showState);
  showState();
  return () => {
    alive = false;
    visibility.disconnect();
    model.send({ type: "visible", view: viewId, value: false });
    model.off("msg:custom", onMessage);
    model.off("change:state", showState);
    if (raf) cancelAnimationFrame(raf);
    if (pending) ack(pending.index, false);
    if (url) URL.revokeObjectURL(url);
    const all = globalThis.streamlabPreviews || [];
    const i = all.indexOf(view);
    if (i >= 0) all.splice(i, 1);
  };
}

export default { render };
