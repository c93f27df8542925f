"""A WebRTC player inside the notebook: the notebook's browser plays the WHEP stream.

The media goes straight from the server to the browser (``RTCPeerConnection`` + ``fetch``);
it never passes through the kernel. The widget is an anywidget whose ES module is the same
``player.js`` the viewer page uses, so both draw the overlay the same, frame-accurate way.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import anywidget
import traitlets

STATIC = Path(__file__).resolve().parent.parent / "webrtc" / "static"


@cache
def player_esm() -> str:
    """The widget's ES module: the frame-code reader, watching through Janus (``janus:``
    URLs) and the shared player module."""
    parts = ("framecode.js", "janus.js", "player.js")
    return "\n".join((STATIC / name).read_text() for name in parts)


class Player(anywidget.AnyWidget):
    """Plays ``whep_url`` in the notebook with the detection overlay and live stats.

    ``player.stats`` (a dict: fps, kbps, codec, size, latencyP50, jitterBufferMs,
    analysisLagFrames, ...) is refreshed by the browser about once a second while the
    kernel is idle; ``player.state`` is the connection state (``connected``, ...).
    Each view (each cell showing the player) has its own peer connection; closing a view
    sends the WHEP DELETE. On failure a view retries every 2 s. A ``whep_url`` of the form
    ``janus:http://HOST:8088/janus?id=N`` watches a forwarded stream through Janus instead.
    """

    _esm = player_esm()
    whep_url = traitlets.Unicode("").tag(sync=True)
    token = traitlets.Unicode("").tag(sync=True)
    overlay = traitlets.Bool(True).tag(sync=True)
    show_stats = traitlets.Bool(True).tag(sync=True)
    stopped = traitlets.Unicode("").tag(sync=True)
    stats = traitlets.Dict().tag(sync=True)
    state = traitlets.Unicode("idle").tag(sync=True)

    def __init__(
        self,
        whep_url: str,
        *,
        token: str | None = None,
        overlay: bool = True,
        stats: bool = True,
        stream: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            whep_url=whep_url, token=token or "", overlay=overlay, show_stats=stats, **kwargs
        )
        self.stream = stream or whep_url.rstrip("/").rsplit("/", 1)[-1]

    def __repr__(self) -> str:
        return f"<Player {self.whep_url} {self.state}>"
