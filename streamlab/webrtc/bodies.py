"""Request bodies as text: whatever charset a client names, a 4xx, never a 5xx."""

from __future__ import annotations

import codecs

from aiohttp import web


async def body_text(request: web.Request, what: str) -> str:
    """The body decoded with the request's charset (UTF-8 when none is named).

    An unknown, malformed or non-text charset is a 415; bytes that do not decode are a 400.
    ``what`` names the body in the error line ("the offer", "the settings").
    """
    try:
        charset = request.charset or "utf-8"
    except (ValueError, LookupError):
        raise web.HTTPUnsupportedMediaType(text="the Content-Type header is malformed") from None
    raw = await request.read()
    try:
        codecs.lookup(charset)
        return raw.decode(charset)
    except LookupError:
        shown = charset[:40].encode("ascii", "backslashreplace").decode()
        raise web.HTTPUnsupportedMediaType(
            text=f"unsupported charset {shown!r}: send {what} as UTF-8"
        ) from None
    except (UnicodeError, ValueError, TypeError):
        raise web.HTTPBadRequest(text=f"{what} is not {charset[:40]!r} text") from None
