"""URL helpers: credentials never leave this module in clear text."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def printable(text: str) -> str:
    """``text`` with control characters escaped, so a message stays one safe line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def redact(url: str) -> str:
    """``rtsp://user:pass@host/x`` → ``rtsp://***@host/x``; anything else unchanged (but
    for control characters, which are escaped)."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return printable(USERINFO.sub("***@", url))
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return printable(USERINFO.sub("***@", url))
    shown = urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
    return printable(shown)


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
