"""A forward's spec: ``janus:http://HOST:PORT/janus[?id=N&codec=vp8&rung=0&secret=S]``.

``id``: the mountpoint's id (a stream's own when one stream is served; the next ones get
``id+1``, ``id+2`` ... in the order the streams were added); without it, an id derived from
the stream's name, so a restarted streamlab finds its mountpoint again. ``codec``: ``vp8``
(default), ``h264`` or ``passthrough`` (the camera's own H.264 units). ``rung``: which rung
of the stream's ladder is sent (an index, 0 = the top, default; or the rung's name).
``secret``: the mountpoint's secret (needed to reuse or remove it; default ``streamlab``).
``admin_key``: when Janus's Streaming plugin requires one to create mountpoints.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

from streamlab.errors import ConfigError

CODECS = ("vp8", "h264", "passthrough")
KNOWN_OPTIONS = {"id", "codec", "rung", "secret", "admin_key"}
EXAMPLE = "janus:http://127.0.0.1:8088/janus?id=1000"


@dataclass(frozen=True, slots=True)
class ForwardSpec:
    """Where and what a forward sends (``ForwardSpec.parse(text)``)."""

    url: str
    """Janus's HTTP API endpoint, e.g. ``http://10.0.0.5:8088/janus``."""
    host: str
    mountpoint_id: int | None = None
    codec: str = "vp8"
    rung: str = "0"
    secret: str = "streamlab"
    admin_key: str | None = None

    @classmethod
    def parse(cls, text: str) -> ForwardSpec:
        """ConfigError naming what is wrong, with an example."""
        if not isinstance(text, str) or not text.startswith("janus:"):
            raise ConfigError(f"a forward must look like {EXAMPLE}, got {text!r}")
        parts = urlsplit(text[len("janus:") :])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"a forward needs Janus's HTTP API URL, e.g. {EXAMPLE}; got {text!r}")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError:
            raise ConfigError(f"bad port in forward {text!r}") from None
        options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(options) - KNOWN_OPTIONS)
        if unknown:
            known = ", ".join(sorted(KNOWN_OPTIONS))
            raise ConfigError(f"unknown forward option {unknown[0]!r} (known: {known})")
        ident = options.get("id")
        if ident is not None and (not ident.isdigit() or not 0 < int(ident) < 2**53):
            raise ConfigError(f"forward id must be a positive integer, got {ident!r}")
        codec = options.get("codec", "vp8").lower()
        if codec not in CODECS:
            raise ConfigError(f"forward codec must be one of {', '.join(CODECS)}, got {codec!r}")
        url = urlunsplit((parts.scheme, parts.netloc, parts.path or "/janus", "", ""))
        return cls(url=url, host=parts.hostname, mountpoint_id=int(ident) if ident else None,
                   codec=codec, rung=options.get("rung", "0") or "0",
                   secret=options.get("secret", "streamlab") or "streamlab",
                   admin_key=options.get("admin_key"))  # fmt: skip

    def id_for(self, stream: str, index: int) -> int:
        """The mountpoint id of the ``index``-th stream (named ``stream``)."""
        if self.mountpoint_id is not None:
            return self.mountpoint_id + index
        return zlib.crc32(f"streamlab:{stream}".encode()) % 2_000_000_000 + 1

    def __str__(self) -> str:
        return f"janus:{self.url}"
