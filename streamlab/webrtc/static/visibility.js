// streamlab visibility probe (anywidget): tells the kernel whether the widget around it
// (the closest .sl-visibility-root, else the probe itself) is on screen, so the kernel does
// not render plots nobody can see.
"use strict";

function render({ model, el }) {
  const view = Math.random().toString(36).slice(2);
  let target = el, observer = null;
  const report = (visible) => model.send({ type: "visible", view, value: visible });
  // the probe is attached before its container is; find the container on the next frame
  const raf = requestAnimationFrame(() => {
    target = el.closest(".sl-visibility-root") || el;
    observer = new IntersectionObserver((entries) => report(entries[0].isIntersecting));
    observer.observe(target);
  });
  return () => {
    cancelAnimationFrame(raf);
    if (observer) observer.disconnect();
    report(false);
  };
}

export default { render };
