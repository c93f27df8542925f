"""Serve a stream from a notebook: the server runs on the kernel's own event loop.

``lab = sl.lab.serve("synthetic://...", name="demo", analyze=["motion"])`` returns at once;
the server keeps serving after the cell ends (the kernel's loop runs between cells). Show
``lab`` (last expression of a cell) for its address, ``lab.player()`` to watch it in the
notebook. Running the cell again stops the previous server of that name first.
With ``measure_quality=True``, ``await lab.quality_viewer()`` scores what a viewer sees
(PSNR, SSIM, smoothness; ``streamlab.lab.quality``).

The server shares the kernel's loop: a cell that blocks (``time.sleep``, a long CPU loop)
stalls the stream and every viewer for that long. Use ``await asyncio.sleep(...)``; a
watchdog warns once when the loop was blocked for more than ``LOOP_LAG_WARN_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import shutil
import warnings
import weakref
from typing import TYPE_CHECKING, Any

from aiohttp import web

from streamlab.camera.launcher import free_port
from streamlab.config import load_config
from streamlab.errors import StreamlabError
from streamlab.lab.cors import cors_middleware
from streamlab.pipeline import Pipeline
from streamlab.webrtc.server import Server

if TYPE_CHECKING:
    from streamlab.lab.player import Player
    from streamlab.lab.quality import QualityViewer
    from streamlab.quality.reference import ReferenceWriter

LOOP_LAG_WARN_S = 1.0
_WATCH_EVERY_S = 0.1
_servers: dict[str, LabServer] = {}


class ServeError(StreamlabError, RuntimeError):
    """The lab server could not start (the port, the source, a setting)."""


class LoopBlockedWarning(UserWarning):
    """The kernel's event loop was blocked, so the served stream stalled."""


class NotebookServer(Server):
    """A ``Server`` whose WHEP and API answer the notebook's page (another origin)."""

    def __init__(self, config: Any, *, allow_origins: tuple[str, ...] = ("loopback",)) -> None:
        super().__init__(config)
        self.allow_origins = allow_origins

    def app(self) -> web.Application:
        app = super().app()
        app.middlewares.insert(0, cors_middleware(self.allow_origins))
        return app


def serve(
    source_or_pipeline: str | Pipeline,
    *,
    name: str = "demo",
    token: str | None = None,
    allow_origins: tuple[str, ...] = ("loopback",),
    measure_quality: bool = False,
    forward: str | None = None,
    **settings: Any,
) -> LabServer:
    """Serve a source URL or a ``Pipeline`` as ``name`` on 127.0.0.1 (a free port).

    Returns at once (``await lab.ready()`` to wait until it listens). ``settings`` are
    stream settings (``analyze``, ``quality``, ``codec``, ...); the Player draws the
    detections itself (``overlay=True`` burns them in instead). ``allow_origins``: pages that
    may call WHEP across origins (the notebook's; ``loopback`` = any 127.0.0.1/localhost
    port, ``*`` = any). ``measure_quality``: keep the frames the encoders are given (a
    temporary folder, removed on stop) so ``await lab.quality_viewer()`` can score what a
    viewer sees. ``forward``: also send the stream to a Janus Streaming mountpoint
    (``janus:http://HOST:8088/janus?id=N``; see ``Server.add_forward``). Needs a running
    event loop: a notebook cell, or async code.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "sl.lab.serve needs a running event loop: call it in a notebook cell or async code"
        ) from None
    previous = _servers.pop(name, None)
    lab = LabServer(source_or_pipeline, name=name, token=token, previous=previous,
                    allow_origins=allow_origins, measure_quality=measure_quality,
                    forward=forward, **settings)  # fmt: skip
    _servers[name] = lab
    return lab


def running_servers() -> dict[str, LabServer]:
    """The lab servers started by ``serve`` that have not been stopped, by name."""
    return {name: lab for name, lab in _servers.items() if lab.state != "stopped"}


class LabServer:
    """A ``Server`` running on the current event loop, started by ``serve``."""

    def __init__(
        self,
        source: str | Pipeline,
        *,
        name: str = "demo",
        token: str | None = None,
        previous: LabServer | None = None,
        allow_origins: tuple[str, ...] = ("loopback",),
        measure_quality: bool = False,
        forward: str | None = None,
        **settings: Any,
    ) -> None:
        self.name = name
        self.token = token
        config = load_config(host="127.0.0.1", port=free_port(), auth_token=token)
        self.server = NotebookServer(config, allow_origins=allow_origins)
        self._own_pipeline = not isinstance(source, Pipeline)
        self._settings = dict(settings)
        if self._own_pipeline:
            self.server.add_stream(source, name=name, **settings)
        else:
            self.server.add_stream(source, name=name)
        if forward is not None:
            self.server.add_forward(forward)
        self.state = "starting"
        self.error: str | None = None
        self.loop_lag_max_s = 0.0
        self._warned = False
        self._players: weakref.WeakSet[Player] = weakref.WeakSet()
        self.reference: ReferenceWriter | None = None
        self._quality_viewers: list[QualityViewer] = []
        if measure_quality:
            from streamlab.lab.quality import reference_folder
            from streamlab.quality.reference import ReferenceWriter

            self.reference = ReferenceWriter(reference_folder())
            self.pipeline.add_sink(self.reference)
        loop = asyncio.get_running_loop()
        self._started = loop.create_task(self._start(previous), name=f"lab-serve:{name}")
        self._watchdog: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def _start(self, previous: LabServer | None) -> None:
        if previous is not None:
            await previous.stop()
        try:
            if not self._own_pipeline and self._settings:
                await self.pipeline.update(**self._settings)
            await self.server.start()
        except (StreamlabError, OSError) as exc:
            self.state, self.error = "failed", str(exc)
            await self.server.stop()
            return
        self.state = "serving"
        for player in list(self._players):
            player.whep_url = self.whep_url(player.stream)  # players made before it listened
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_loop())

    async def ready(self) -> LabServer:
        """Wait until the server listens; raises ServeError when it could not start."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._started)
        if self.error is not None:
            raise ServeError(self.error)
        if self.state == "stopped":
            raise ServeError(f"lab server {self.name!r} was stopped")
        return self

    @property
    def running(self) -> bool:
        return self.state in ("starting", "serving")

    def stop(self) -> asyncio.Task[None]:
        """Stop serving and release the port, peers and (own) pipeline; await it to wait.

        A pipeline handed to ``serve`` keeps running: only its serving ends.
        """
        if self._stopping is None:
            self.state = "stopped"
            self._stopping = asyncio.get_running_loop().create_task(self._stop())
            if _servers.get(self.name) is self:
                del _servers[self.name]
            for player in list(self._players):
                player.stopped = "server stopped"
        return self._stopping

    async def _stop(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
        if not self._started.done():
            self._started.cancel()
        with contextlib.suppress(BaseException):
            await self._started
        viewers, self._quality_viewers = self._quality_viewers, []
        for viewer in viewers:  # before the server, so each leaves its session cleanly
            await viewer.close()
        if self.reference is not None:
            self.pipeline.remove_sink(self.reference)
        if not self._own_pipeline:
            for stream in list(self.server.streams.values()):
                stream.pipeline.remove_sink(stream.fanout)
                stream.fanout.close()
            self.server.streams.clear()
        await self.server.stop()
        if self.reference is not None:
            await asyncio.to_thread(self.reference.close)
            await asyncio.to_thread(shutil.rmtree, self.reference.folder, True)

    async def _watch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        ticks = 0
        while True:
            started = loop.time()
            await asyncio.sleep(_WATCH_EVERY_S)
            ticks += 1
            if ticks % 5 == 0:
                self._show_pipeline_state()
            lag = loop.time() - started - _WATCH_EVERY_S
            self.loop_lag_max_s = max(self.loop_lag_max_s, lag)
            if lag > LOOP_LAG_WARN_S and not self._warned:
                self._warned = True
                warnings.warn(
                    f"the event loop was blocked for {lag:.1f} s, so stream {self.name!r} "
                    "stalled; use 'await asyncio.sleep()' instead of time.sleep() in cells",
                    LoopBlockedWarning,
                    stacklevel=1,
                )

    def _show_pipeline_state(self) -> None:
        """Players of a stream whose pipeline stopped show it (and stop retrying)."""
        for player in list(self._players):
            stream = self.server.streams.get(player.stream)
            stopped = stream is None or not stream.pipeline.running
            if stopped and not player.stopped:
                player.stopped = "pipeline stopped"
            elif not stopped and player.stopped == "pipeline stopped":
                player.stopped = ""

    # -- streams -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The viewer page (``?token=`` added when the server has one)."""
        query = f"?token={self.token}" if self.token else ""
        return f"{self.server.url}{query}"

    def whep_url(self, name: str | None = None) -> str:
        return f"{self.server.url}whep/{name or self.name}"

    @property
    def pipeline(self) -> Pipeline:
        """The default stream's pipeline."""
        return self.server.streams[self.name].pipeline

    def player(self, name: str | None = None, **options: Any) -> Player:
        """A notebook Player for stream ``name`` (the default stream when None).

        Works in the same cell as ``serve``: a player made before the server listens shows
        "starting" and plays as soon as it does.
        """
        from streamlab.lab.player import Player

        chosen = name or self.name
        if chosen not in self.server.streams:
            raise KeyError(f"no stream named {chosen!r}; served: {sorted(self.server.streams)}")
        url = self.whep_url(chosen) if self.state == "serving" else ""
        player = Player(url, token=self.token, stream=chosen, **options)
        if not self.running:
            player.stopped = "server stopped"
        self._players.add(player)
        return player

    @property
    def measures_quality(self) -> bool:
        """Whether the default stream keeps reference frames (``measure_quality=True``)."""
        return self.reference is not None

    @property
    def quality_viewers(self) -> list[QualityViewer]:
        """The quality viewers of the default stream that are still open."""
        return [v for v in self._quality_viewers if not v.closed]

    async def quality_viewer(self, *, scorers: int = 1) -> QualityViewer:
        """Connect an aiortc viewer to the default stream that scores what it sees (PSNR-Y,
        PSNR-YUV, SSIM-Y against the frame each shows, in ``scorers`` threads beside it);
        ``viewer.quality()`` gives the figures, ``await viewer.close()`` ends it.

        Raises ServeError when the stream is served without ``measure_quality=True``.
        """
        from streamlab.lab.quality import QualityViewer

        if self.reference is None:
            raise ServeError(
                f"stream {self.name!r} is not measured: serve it with "
                "sl.lab.serve(..., measure_quality=True) to score a viewer"
            )
        await self.ready()
        viewer = QualityViewer(self.whep_url(), reference=str(self.reference.folder),
                               token=self.token, scorers=scorers)  # fmt: skip
        await viewer.connect()
        if not self.running:  # stopped while it connected
            await viewer.close(delete=False)
            raise ServeError(f"lab server {self.name!r} was stopped")
        self._quality_viewers = [*self.quality_viewers, viewer]
        return viewer

    async def update(self, name: str | None = None, /, **settings: Any) -> dict[str, Any]:
        """Apply live settings to stream ``name`` (default stream); returns them as applied.

        Raises ConfigError for a bad value (nothing changes).
        """
        from streamlab.lab.target import resolve

        return await resolve(self, name).update(**settings)

    def settings(self, name: str | None = None) -> dict[str, Any]:
        """The live settings of stream ``name`` as applied."""
        from streamlab.lab.target import resolve

        return resolve(self, name).settings()

    def info(self) -> list[dict[str, Any]]:
        """``GET /api/streams`` as Python: one dict per stream."""
        return [stream.info() for stream in self.server.streams.values()]

    # -- display -----------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<LabServer {self.name!r} {self.state} {self.server.url}>"

    def _repr_html_(self) -> str:
        streams = ", ".join(html.escape(n) for n in self.server.streams) or "none"
        color = {"serving": "#080", "starting": "#a70"}.get(self.state, "#b00")
        error = f" — {html.escape(self.error)}" if self.error else ""
        return (
            f"<div><b>streamlab</b> <span style='color:{color}'>{self.state}</span>{error} — "
            f"<a href='{html.escape(self.url)}' target='_blank'>{html.escape(self.url)}</a>"
            f" — streams: {streams}</div>"
        )
