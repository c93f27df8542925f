"""URL helpers: credentials never leave this module in clear text."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(url: str) -> str:
    """``rtsp://user:pass@host/x`` → ``rtsp://***@host/x``; anything else unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return USERINFO.sub("***@", url)
    if parts.username is None and parts.password is None:
        return USERINFO.sub("***@", url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def redact_text(text: str, url: str) -> str:
    """Remove ``url``'s credentials (and any user-info) from a message such as an error."""
    parts = urlsplit(url) if "://" in url else None
    if parts is not None and parts.password:
        text = text.replace(parts.password, "***")
    return USERINFO.sub("***@", text)


def default_name(url: str) -> str:
    """A short, credential-free stream name from a URL or path."""
    parts = urlsplit(url)
    if parts.scheme in ("rtsp", "rtsps"):
        tail = parts.path.strip("/").replace("/", "-")
        return tail or (parts.hostname or "camera")
    if parts.scheme == "synthetic":
        return "synthetic"
    stem = url.rstrip("/").rsplit("/", 1)[-1]
    return stem.rsplit(".", 1)[0] or "stream"
