"""``open_source(url)``: the right source for a URL or path."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from streamlab.config import StreamingConfig
from streamlab.errors import SourceError
from streamlab.events import EventBus
from streamlab.sources.base import Source
from streamlab.sources.url import redact


def open_source(
    url: str,
    *,
    config: StreamingConfig | None = None,
    bus: EventBus | None = None,
    name: str | None = None,
    realtime: bool = True,
    loop: bool = False,
) -> Source:
    """A (not yet started) source for ``synthetic://...``, ``rtsp://...`` or a file path.

    ``realtime`` and ``loop`` apply to files. Raises SourceError for anything else.
    """
    if not isinstance(url, str) or not url.strip():
        raise SourceError("no source URL given")
    try:
        scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    except ValueError as exc:
        raise SourceError(f"malformed source URL {redact(url)}: {exc}") from None
    if scheme == "synthetic":
        from streamlab.sources.synthetic import SyntheticSource

        return SyntheticSource(url, bus=bus, name=name)
    if scheme in ("rtsp", "rtsps"):
        from streamlab.sources.rtsp import RtspSource

        return RtspSource(url, config=config, bus=bus, name=name)
    if scheme in ("", "file"):
        from streamlab.sources.file import FileSource

        path = Path(url.removeprefix("file://"))
        return FileSource(path, realtime=realtime, loop=loop, bus=bus, name=name)
    raise SourceError(
        f"unsupported source scheme {scheme!r} in {redact(url)} "
        "(use synthetic://, rtsp:// or a file path)"
    )
