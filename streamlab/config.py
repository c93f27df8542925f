"""Typed, validated settings: code, env vars (prefix ``STREAMING_``) and CLI flags agree.

A bad value anywhere becomes one ``ConfigError`` line naming the setting and its range.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamlab.errors import ConfigError

ENV_PREFIX = "STREAMING_"
SECRET_FIELDS = frozenset({"auth_token", "viewer_token"})


class StreamingConfig(BaseSettings):
    """Every setting of a stream, with its allowed range. Env: ``STREAMING_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_assignment=True, frozen=False
    )

    # --- ingest -----------------------------------------------------------------------
    rtsp_timeout_ms: int = Field(15000, ge=1000, le=60000, description="RTSP open/read timeout")
    rtsp_buffer_size: int = Field(1, ge=1, le=10, description="frames the source may queue")
    rtsp_transport: Literal["auto", "tcp", "udp"] = Field(
        "auto", description="RTSP lower transport; auto: TCP, UDP when refused (461)"
    )
    reconnect_initial_s: float = Field(0.2, ge=0.01, le=60, description="first backoff delay")
    reconnect_max_s: float = Field(5.0, ge=0.1, le=300, description="backoff cap")
    circuit_failures: int = Field(
        8, ge=1, le=1000, description="failed connects in a row that open the circuit"
    )
    circuit_open_s: float = Field(10.0, ge=0.1, le=3600, description="how long it stays open")
    stall_timeout_s: float = Field(5.0, ge=0.2, le=600, description="no frame this long: reconnect")

    # --- pipeline ---------------------------------------------------------------------
    target_fps: int = Field(10, ge=1, le=30, description="analysis rate for target_fps skipping")
    frame_skip_interval: int = Field(5, ge=1, le=20, description="N of every_nth skipping")
    analysis_frame_interval: int = Field(30, ge=10, le=120, description="frames between analyses")
    detection_frame_interval: int = Field(
        60, ge=30, le=300, description="frames between expensive detections"
    )
    buffering: str = Field("latest", description="buffering strategy spec")
    skipping: str = Field("none", description="skipping strategy spec")
    quality: str = Field("fixed:source", description="quality strategy spec (per viewer)")
    codec: str = Field("vp8", description="preferred codec; each viewer gets one it offered")
    network: str = Field("", description="emulated link per viewer, e.g. rate=800k,delay=40ms")
    start_bitrate: int = Field(
        300_000, ge=50_000, le=50_000_000,
        description="a new viewer's bandwidth estimate (bit/s, e.g. 300k): the bandwidth "
        "strategy starts on the rung it affords, then probes the link for more",
    )  # fmt: skip
    congestion_feedback: Literal["transport-cc", "remb"] = Field(
        "transport-cc",
        description="what a viewer reports of its link: transport-cc (per-packet arrival "
        "times, when the viewer offers it, as browsers do) or remb only",
    )
    sender_reports: Literal["capture", "send"] = Field(
        "capture",
        description="what RTCP sender reports map RTP time to: capture (when the media "
        "reached the server, one clock for audio and video: browsers keep lip sync) or "
        "send (aiortc's own: when the packet left)",
    )
    rtp_clock: Literal["arrival", "camera"] = Field(
        "arrival", description="RTP timestamps from arrival time or the camera's own clock"
    )
    playout_delay: str = Field(
        "0", description="how long the browser may hold a frame: 0, browser, MS or MIN-MAX (ms)"
    )
    lip_sync: bool = Field(
        True,
        description="a viewer that gets the camera's audio lets its browser hold the video "
        "for the sound (the playout-delay hint's maximum is raised to 1000 ms); false keeps "
        "the video latency-first and the sound lags by the browser's audio buffer",
    )
    audio: Literal["auto", "opus", "off"] = Field(
        "auto",
        description="the camera's audio to viewers: auto (PCMA/PCMU/Opus pass through to "
        "viewers that offered them, anything else is transcoded to Opus once per stream), "
        "opus (always transcode) or off (no audio track)",
    )
    passthrough_join: Literal["gop", "bridge", "wait"] = Field(
        "bridge", description="how a passthrough viewer starts between the camera's keyframes"
    )
    stage_delay_ms: int = Field(
        0, ge=0, le=5000, description="calibration stage: hold each frame this long"
    )
    analyze: list[str] = Field(default_factory=list, description="detector names")
    overlay: bool = Field(
        False,
        description="burn detections into the video (for players that cannot draw them; "
        "streamlab's page and Player draw them themselves, and draw none when they are burned)",
    )
    analysis_workers: int = Field(
        1, ge=1, le=16, description="analysis threads (more only helps beyond 2 cores)"
    )
    analysis_lag_budget_ms: int = Field(
        500, ge=10, le=60000, description="adaptive skipping keeps lag under this"
    )
    analysis_size: int = Field(
        640, ge=160, le=3840, description="max width of the image detectors see (px)"
    )
    analysis_isolation: Literal["thread", "process"] = Field(
        "thread", description="run detectors in threads or in a worker process (shared memory)"
    )

    # --- serving ----------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port")
    auth_token: str | None = Field(None, description="Bearer token for WHEP, API and metrics")
    allow_public_bind: bool = Field(False, description="allow binding beyond loopback w/o token")
    max_viewers: int = Field(16, ge=1, le=1000, description="viewers per stream")
    max_body_bytes: int = Field(65536, ge=1024, le=1048576, description="largest request body")
    viewer_queue: int = Field(4, ge=1, le=120, description="per-viewer queue (frames)")
    keyframe_min_interval_ms: int = Field(
        500, ge=0, le=10000, description="at most one forced keyframe per encoder this often"
    )
    vp8_cpu_used: int = Field(
        16, ge=4, le=16, description="libvpx speed (cpu-used): 16 is fastest, 8 costs ~2x CPU"
    )
    encoder_threads: int = Field(
        1, ge=1, le=16, description="threads of the shared encoder (libvpx stalls with more)"
    )
    viewer_connect_timeout_s: float = Field(
        15.0, ge=0.5, le=300, description="close a viewer not connected by then"
    )
    stun_servers: list[str] = Field(default_factory=list, description="stun: URLs")
    turn_servers: list[str] = Field(default_factory=list, description="turn: URLs")
    ice_host_addresses: list[str] = Field(default_factory=list, description="local ICE addresses")
    ice_allowed_networks: list[str] = Field(
        default_factory=list, description="CIDRs allowed for remote candidates"
    )

    # --- reliability and security (issue #11) -----------------------------------------
    healthy_reset_s: float = Field(
        10.0, ge=0, le=3600, description="streaming this long resets the reconnect backoff"
    )
    viewer_token: str | None = Field(
        None, description="Bearer token that may only watch (page, WHEP); auth_token is admin"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call WHEP and /api (* = any)"
    )
    tls_cert: str | None = Field(None, description="PEM certificate file: serve HTTPS")
    tls_key: str | None = Field(None, description="PEM private key file of tls_cert")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        import re

        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
                raise ValueError(f"an origin is * or scheme://host[:port], got {origin!r}")
        return [o.lower() for o in value]

    @field_validator("tls_cert", "tls_key")
    @classmethod
    def _pem_file(cls, value: str | None, info: Any) -> str | None:
        import os

        if value and not os.path.isfile(value):
            raise ValueError(f"no such file: {value!r}")
        if value and info.field_name == "tls_key" and not info.data.get("tls_cert"):
            raise ValueError("tls_key needs tls_cert")
        return value or None

    @field_validator("viewer_token")
    @classmethod
    def _viewer_needs_admin(cls, value: str | None, info: Any) -> str | None:
        if value and not info.data.get("auth_token"):
            raise ValueError("viewer_token needs auth_token (the admin token) as well")
        return value or None

    # --- logs -------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("network")
    @classmethod
    def _network_spec(cls, value: str) -> str:
        from streamlab.delivery.network import NetworkSpec

        try:
            return str(NetworkSpec.parse(value))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("start_bitrate", mode="before")
    @classmethod
    def _start_bitrate(cls, value: object) -> object:
        if isinstance(value, str):
            from streamlab.delivery.network import parse_rate

            try:
                return parse_rate(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("playout_delay")
    @classmethod
    def _playout_spec(cls, value: str) -> str:
        from streamlab.delivery.playout import normalized

        try:
            return normalized(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("buffering", "skipping", "quality", "codec")
    @classmethod
    def _strategy_exists(cls, value: str, info: Any) -> str:
        from streamlab.strategies import registry_for

        family = "codec" if info.field_name == "codec" else info.field_name
        try:
            return registry_for(family).validate(value)
        except ModuleNotFoundError:  # that family is not built yet
            return value
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


def load_config(**overrides: Any) -> StreamingConfig:
    """Settings from env vars and ``overrides`` (which win); raises one clear ConfigError."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return StreamingConfig(**clean)
    except ValidationError as exc:
        raise config_error(exc, clean) from None
    except ValueError as exc:  # pydantic-settings' SettingsError: an env list that is not JSON
        name = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "?"
        raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be a JSON list, "
                          'e.g. ["a", "b"]') from None  # fmt: skip


def updated(config: StreamingConfig, **changes: Any) -> StreamingConfig:
    """A copy of ``config`` with ``changes`` validated; raises one clear ConfigError."""
    data = config.model_dump()
    data.update(changes)
    try:
        return StreamingConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, changes) from None


def config_error(exc: ValidationError, given: dict[str, Any] | None = None) -> ConfigError:
    """One line per bad setting: name, env var, the value and its allowed range."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        where = "" if given and name in given else f" (env {ENV_PREFIX}{name.upper()})"
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting {name!r}")
            continue
        value = "***" if name in SECRET_FIELDS else repr(error.get("input"))
        reason = _range(name) or str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}{where} = {value}: {reason}")
    return ConfigError("; ".join(lines))


def field_range(name: str) -> tuple[float, float] | None:
    """``(low, high)`` of a numeric setting, or None when it has no range."""
    field = StreamingConfig.model_fields.get(name)
    low = high = None
    for meta in field.metadata if field is not None else ():
        low = getattr(meta, "ge", low)
        high = getattr(meta, "le", high)
    return None if low is None or high is None else (low, high)


def _range(name: str) -> str:
    bounds = field_range(name)
    return "" if bounds is None else f"must be between {bounds[0]} and {bounds[1]}"
