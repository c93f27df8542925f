"""The notebook lab: watch, tune and plot a live stream inside JupyterLab (``sl.lab``).

- ``serve(source_or_pipeline, name=...)`` -> ``LabServer``: a server on the kernel's loop;
- ``Player(whep_url)``: WebRTC playback in the notebook's browser (anywidget);
- ``Preview(pipeline)``: acknowledged JPEG frames over the widget comm;
- ``ControlPanel(target)``: every live setting, always showing what is applied;
- ``LivePlot(target)``: fps, latency, analysis lag, kbit/s, drops, quality changes, PSNR;
- ``QualityViewer``: ``await served.quality_viewer()`` of a stream served with
  ``measure_quality=True`` scores what a viewer sees (PSNR, SSIM, smoothness);
- ``EventRecorder(bus)``: events into a pandas DataFrame;
- ``sweep(file_or_matrix)``: run experiment scenarios (streamlab.experiments), a DataFrame.

Submodules load on first use, so ``import streamlab.lab`` is cheap; ipywidgets, anywidget
and matplotlib are imported only by the objects that need them (``serve`` needs none).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# eager: the function ``serve`` must win over the submodule of the same name
from streamlab.lab.serve import LabServer, LoopBlockedWarning, ServeError, serve

if TYPE_CHECKING:
    from streamlab.lab.liveplot import LivePlot
    from streamlab.lab.panel import ControlPanel
    from streamlab.lab.player import Player
    from streamlab.lab.preview import LivePreview, Preview
    from streamlab.lab.quality import QualityViewer
    from streamlab.lab.recorder import EventRecorder
    from streamlab.lab.target import Target

_WHERE = {
    "Player": "player",
    "Preview": "preview",
    "LivePreview": "preview",
    "QualityViewer": "quality",
    "ControlPanel": "panel",
    "LivePlot": "liveplot",
    "EventRecorder": "recorder",
    "Target": "target",
    "sweep": "streamlab.experiments.sweep",
}

__all__ = [
    "ControlPanel",
    "EventRecorder",
    "LabServer",
    "LivePlot",
    "LivePreview",
    "LoopBlockedWarning",
    "Player",
    "Preview",
    "QualityViewer",
    "ServeError",
    "Target",
    "serve",
    "sweep",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'streamlab.lab' has no attribute {name!r}")
    try:
        path = module if "." in module else f"streamlab.lab.{module}"
        value = getattr(importlib.import_module(path), name)
    except ModuleNotFoundError as exc:
        extra = "bench" if name == "sweep" else "notebook"
        if exc.name and exc.name.split(".")[0] in ("ipywidgets", "anywidget", "matplotlib",
                                                   "pandas", "tqdm", "dask"):  # fmt: skip
            raise ModuleNotFoundError(
                f"streamlab.lab.{name} needs {exc.name}: pip install 'streamlab[{extra}]'",
                name=exc.name,
            ) from None
        raise
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
