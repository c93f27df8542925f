"""Live preview of a running pipeline in a notebook: an ipywidgets Image fed by a sink."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import cv2

from streamlab.frame import Frame


class LatestFrameSink:
    """A pipeline sink that keeps only the newest frame (one slot, newest wins)."""

    def __init__(self) -> None:
        self.frame: Frame | None = None
        self.offered = 0

    def offer(self, frame: Frame) -> None:
        self.frame = frame
        self.offered += 1

    def close(self) -> None:
        self.frame = None


class LivePreview:
    """Shows the pipeline's outgoing frames as JPEG in an ``ipywidgets.Image``.

    JPEG encoding runs in the default executor, at most ``fps`` times a second, so the
    notebook never slows the stream. ``display(preview.widget)`` to show it.
    """

    def __init__(self, pipeline: Any, *, fps: float = 5.0, width: int = 480) -> None:
        import ipywidgets as widgets

        if not 0.1 <= fps <= 30:
            raise ValueError(f"preview fps must be between 0.1 and 30, got {fps}")
        self.pipeline = pipeline
        self.fps = fps
        self.widget = widgets.Image(format="jpeg", width=width)
        self.sink = LatestFrameSink()
        self.shown = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Attach to the pipeline and start refreshing (needs a running event loop)."""
        if self._task is not None:
            return
        self.pipeline.add_sink(self.sink)
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def stop(self) -> None:
        """Detach and stop refreshing."""
        task, self._task = self._task, None
        self.pipeline.remove_sink(self.sink)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _refresh(self) -> None:
        loop = asyncio.get_running_loop()
        last_seq = -1
        while True:
            frame = self.sink.frame
            if frame is not None and frame.seq != last_seq:
                last_seq = frame.seq
                jpeg = await loop.run_in_executor(None, _encode_jpeg, frame)
                self.widget.value = jpeg
                self.shown += 1
            await asyncio.sleep(1.0 / self.fps)


def _encode_jpeg(frame: Frame) -> bytes:
    ok, data = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return data.tobytes() if ok else b""
