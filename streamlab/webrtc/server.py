"""The HTTP side: viewer page, WHEP, stream API, Prometheus metrics and health.

``Server`` runs in any asyncio loop (a notebook's included): add streams, ``await start()``,
open ``server.url``; ``await stop()`` releases every peer connection, pipeline and socket.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import Gauge

from streamlab.config import StreamingConfig, load_config, updated
from streamlab.delivery.stream import StreamDelivery
from streamlab.errors import ConfigError, NegotiationError, StreamlabError
from streamlab.forward import JanusForward, make_forwards
from streamlab.forward.metrics import ForwardCollector
from streamlab.observe.audio_metrics import AudioCollector
from streamlab.observe.health import Health, HealthObserver
from streamlab.observe.metrics import CONTENT_TYPE, MetricsObserver
from streamlab.pipeline import LIVE_SETTINGS, Pipeline
from streamlab.sources.url import default_name
from streamlab.strategies.codec import codecs
from streamlab.webrtc.bodies import body_text
from streamlab.webrtc.heap import HeapTrimmer
from streamlab.webrtc.peer import RELEASED_AFTER_S
from streamlab.webrtc.security import authorize, cors_middleware, tls_context
from streamlab.webrtc.session import Session, answer_offer, close_all

log = structlog.get_logger("streamlab.server")
STATIC = Path(__file__).with_name("static")
SDP = "application/sdp"


@dataclass(eq=False)
class Stream:
    """One served stream: its pipeline, its fan-out and its health."""

    name: str
    pipeline: Pipeline
    fanout: StreamDelivery
    health: HealthObserver

    @property
    def delivery(self) -> StreamDelivery:
        return self.fanout

    def settings(self) -> dict[str, Any]:
        """The stream's live settings as applied now."""
        config = self.pipeline.config
        return {name: getattr(config, name) for name in sorted(LIVE_SETTINGS)}

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "settings": self.settings(),
            "health": self.health.report().to_dict(),
            "pipeline": self.pipeline.stats(),
            "delivery": self.fanout.stats(),
            "viewers": [self.fanout.viewer_info(v) for v in self.fanout.viewers.values()],
            "forwards": [f.info() for f in self.fanout.forwards],
            "whep": f"/whep/{self.name}",
        }


class Server:
    """Serves one or more analysed streams over WebRTC (WHEP) with a viewer page."""

    def __init__(self, config: StreamingConfig | None = None) -> None:
        self.config = config or load_config()
        self.metrics = MetricsObserver()
        self.viewers_gauge = Gauge("streamlab_viewers", "Connected WebRTC viewers", ["stream"],
                                   registry=self.metrics.registry)  # fmt: skip
        self.streams: dict[str, Stream] = {}
        self.sessions: dict[str, Session] = {}
        self.heap = HeapTrimmer(delay_s=RELEASED_AFTER_S + 1.0)  # once the peer is freed
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.metrics.registry.register(ForwardCollector(self._forwards))
        self.metrics.registry.register(AudioCollector(self._audios))

    # -- streams -----------------------------------------------------------------------

    def add_stream(
        self, source: str | Pipeline, *, name: str | None = None, **settings: Any
    ) -> Stream:
        """Serve ``source`` as ``name``; ``settings`` override config (codec, quality, analyze).

        ``source`` may be a ``Pipeline`` (running or not): it is served with its own config.
        """
        given = source if isinstance(source, Pipeline) else None
        if given is not None:
            config, source = given.config, f"{given.source.scheme}://{given.name}"
            name = name or given.name
        else:
            config = updated(self.config, **settings) if settings else self.config
        assert isinstance(source, str)
        name = name or default_name(source)
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"stream name must be letters, digits, - or _, got {name!r}")
        if name in self.streams:
            raise ConfigError(f"a stream named {name!r} is already served")
        codec = codecs.create(config.codec)
        if codec.passthrough and not source.startswith(("rtsp://", "rtsps://")):
            raise ConfigError("codec passthrough needs an H.264 RTSP camera source (rtsp://...)")
        pipeline = given or Pipeline(source, config=config, name=name)
        expected = pipeline.source.stats.nominal_fps or 30.0
        fanout = StreamDelivery(name, config, pipeline.bus, fps=expected)
        pipeline.add_sink(fanout)
        self.metrics.attach(pipeline.bus)
        health = HealthObserver(pipeline.bus, name, expected_fps=expected,
                                lag_budget_s=config.analysis_lag_budget_ms / 1000)  # fmt: skip
        stream = Stream(name, pipeline, fanout, health)
        self.streams[name] = stream
        return stream

    def add_forward(self, spec: str, *, stream: str | None = None) -> list[JanusForward]:
        """Forward every stream (or ``stream``) to an SFU: ``janus:http://HOST:8088/janus``
        with optional ``?id=N&codec=vp8|h264|passthrough&rung=0`` (``streamlab.forward``).
        Starts at once when the server runs. ConfigError for a bad spec."""
        forwards = make_forwards(spec, self.streams, stream)
        if self._runner is not None:
            for forward in forwards:
                forward.start()
        return forwards

    def _audios(self) -> list[tuple[str, Any]]:
        return [(n, s.fanout.audio) for n, s in self.streams.items()]

    def _forwards(self) -> list[tuple[str, JanusForward]]:
        return [(n, f) for n, s in self.streams.items() for f in s.fanout.forwards]

    async def update(self, name: str, **settings: Any) -> dict[str, Any]:
        """Apply live settings to stream ``name`` (pipeline and delivery) and return its
        settings as now applied. ConfigError for a bad value (nothing changes), KeyError for
        an unknown stream."""
        stream = self.streams.get(name)
        if stream is None:
            raise KeyError(name)
        if not settings:
            return stream.settings()
        if "codec" in settings and isinstance(settings["codec"], str):
            stream.fanout.check_codec(codecs.validate(settings["codec"]), stream.pipeline.source)
        await stream.pipeline.update(**settings)
        return stream.settings()

    async def update_viewer(self, name: str, viewer_id: str, **settings: Any) -> dict[str, Any]:
        """Per-viewer ``network`` / ``quality`` / ``playout_delay`` (None: follow the stream);
        returns the viewer's info. KeyError for an unknown stream or viewer, ConfigError for a
        bad value."""
        stream = self.streams.get(name)
        if stream is None:
            raise KeyError(name)
        return stream.fanout.update_viewer(viewer_id, **settings)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base URL; before it listens, the configured port's (None when the
        port is chosen by the system at start: ``port=0``)."""
        port = self.port if self.port is not None else self.config.port
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.config.tls_cert else 'http'}://{shown}:{port}/"

    async def start(self) -> Server:
        """Start every pipeline and listen. Raises ConfigError for an unsafe bind."""
        self._check_bind()
        for stream in self.streams.values():
            stream.fanout.attach_units(stream.pipeline.source)
            await stream.pipeline.start()
        app = self.app()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port,
                           ssl_context=tls_context(self.config))  # fmt: skip
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise ConfigError(f"cannot listen on {self.config.host}:{self.config.port}: "
                              f"{exc.strerror or exc}") from None  # fmt: skip
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port
        for _, forward in self._forwards():
            forward.start()
        log.info("serving", url=self.url, streams=list(self.streams))
        return self

    async def stop(self) -> None:
        """Close every session, stop every pipeline, stop listening. Idempotent."""
        await close_all(list(self.sessions.values()))
        self.sessions.clear()
        self.heap.cancel()
        await asyncio.gather(*(f.stop() for _, f in self._forwards()))
        for stream in self.streams.values():
            stream.fanout.close()
            await stream.pipeline.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Server:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _check_bind(self) -> None:
        host = self.config.host
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback and not self.config.auth_token and not self.config.allow_public_bind:
            raise ConfigError(
                f"refusing to serve on {host} without STREAMING_AUTH_TOKEN "
                "(set a token, or STREAMING_ALLOW_PUBLIC_BIND=true to accept the risk)"
            )

    # -- HTTP --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes,
                              middlewares=[cors_middleware(self.config), self._errors])  # fmt: skip
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.ico", self._no_content)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/api/streams", self._api_streams)
        app.router.add_patch("/api/streams/{name}", self._api_patch_stream)
        app.router.add_patch("/api/streams/{name}/viewers/{viewer}", self._api_patch_viewer)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post("/whep/{name}", self._whep_offer)
        app.router.add_route("OPTIONS", "/whep/{name}", self._whep_options)
        app.router.add_delete("/whep/{name}/{session}", self._whep_delete)
        app.router.add_patch("/whep/{name}/{session}", self._whep_patch)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPException:
            raise
        except NegotiationError as exc:
            return _text(400, str(exc))
        except StreamlabError as exc:
            return _text(400, str(exc))
        except Exception as exc:
            log.error("request_failed", path=request.path, error=repr(exc))
            return _text(500, "internal error")

    def _authorize(self, request: web.Request) -> None:
        authorize(request, self.config)  # viewer: watch; admin: also PATCH /api and /metrics

    def _stream(self, request: web.Request) -> Stream:
        name = request.match_info["name"]
        stream = self.streams.get(name)
        if stream is None:
            raise web.HTTPNotFound(text=f"no stream named {name!r}")
        return stream

    async def _no_content(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _api_streams(self, request: web.Request) -> web.Response:
        self._authorize(request)
        body = {"streams": [s.info() for s in self.streams.values()]}
        return web.json_response(body, dumps=lambda d: json.dumps(d, default=str))

    async def _settings_body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            given = request.content_type
            raise web.HTTPUnsupportedMediaType(
                text=f"send settings as Content-Type: application/json, got {given!r}"
            )
        text = await body_text(request, "the settings")
        try:
            body = json.loads(text)
        except ValueError:
            raise web.HTTPBadRequest(text="the body is not valid JSON") from None
        if not isinstance(body, dict) or not all(isinstance(k, str) for k in body):
            example = '{"quality": "aimd"}'
            raise web.HTTPBadRequest(text=f"send a JSON object of settings, e.g. {example}")
        return body

    async def _api_patch_stream(self, request: web.Request) -> web.Response:
        self._authorize(request)
        stream = self._stream(request)
        body = await self._settings_body(request)
        fixed = sorted(set(body) - LIVE_SETTINGS)
        if fixed:
            live = ", ".join(sorted(LIVE_SETTINGS))
            raise ConfigError(f"{fixed[0]!r} is not a live setting; live settings: {live}")
        settings = await self.update(stream.name, **body)
        return web.json_response({"name": stream.name, "settings": settings})

    async def _api_patch_viewer(self, request: web.Request) -> web.Response:
        self._authorize(request)
        stream = self._stream(request)
        body = await self._settings_body(request)
        viewer_id = request.match_info["viewer"]
        if viewer_id not in stream.fanout.viewers:
            raise web.HTTPNotFound(text=f"stream {stream.name!r} has no viewer {viewer_id!r}")
        info = await self.update_viewer(stream.name, viewer_id, **body)
        return web.json_response(info)

    async def _metrics(self, request: web.Request) -> web.Response:
        self._authorize(request)
        for name, stream in self.streams.items():
            self.viewers_gauge.labels(name).set(len(stream.fanout.viewers))
        return web.Response(body=self.metrics.render().encode(),
                            headers={"Content-Type": CONTENT_TYPE})  # fmt: skip

    async def _healthz(self, request: web.Request) -> web.Response:
        reports = [s.health.report() for s in self.streams.values()]
        worst = Health.HEALTHY
        for report in reports:
            if report.status is Health.UNHEALTHY:
                worst = Health.UNHEALTHY
            elif report.status is Health.DEGRADED and worst is Health.HEALTHY:
                worst = Health.DEGRADED
        body = {"status": str(worst), "streams": [r.to_dict() for r in reports]}
        return web.json_response(body, status=503 if worst is Health.UNHEALTHY else 200)

    async def _whep_options(self, request: web.Request) -> web.Response:
        self._stream(request)
        return web.Response(status=204, headers={"Accept-Post": SDP})

    async def _whep_offer(self, request: web.Request) -> web.Response:
        self._authorize(request)
        stream = self._stream(request)
        if request.content_type != SDP:
            raise web.HTTPUnsupportedMediaType(
                text=f"WHEP offers must be Content-Type: {SDP}, got {request.content_type!r}"
            )
        if request.content_length and request.content_length > self.config.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=self.config.max_body_bytes,
                                                actual_size=request.content_length)  # fmt: skip
        if len(stream.fanout.viewers) >= self.config.max_viewers:
            raise web.HTTPServiceUnavailable(
                text=f"stream {stream.name!r} has its maximum of {self.config.max_viewers} viewers",
                headers={"Retry-After": "5"},
            )
        offer = await body_text(request, "the offer")
        if not offer.strip().startswith("v=0"):
            raise NegotiationError("invalid SDP offer: it must start with v=0")
        session, answer = await answer_offer(stream.fanout, offer, self.config,
                                             on_close=self._forget)  # fmt: skip
        self.sessions[session.id] = session
        location = f"/whep/{stream.name}/{session.id}"
        return web.Response(status=201, text=answer, content_type=SDP,
                            headers={"Location": location, "ETag": f'"{session.id}"'})  # fmt: skip

    def _forget(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        self.heap.closed()

    async def _whep_delete(self, request: web.Request) -> web.Response:
        self._authorize(request)
        stream = self._stream(request)
        session = self.sessions.get(request.match_info["session"])
        if session is None or session.stream != stream.name:
            raise web.HTTPNotFound(text="no such WHEP session")
        self.sessions.pop(session.id, None)
        await session.close()
        self.heap.closed()
        return web.Response(status=200, text="closed")

    async def _whep_patch(self, request: web.Request) -> web.Response:
        self._authorize(request)
        raise web.HTTPMethodNotAllowed(
            "PATCH",
            ["DELETE"],
            text="trickle ICE is not supported: send all candidates in the offer",
        )


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message)
