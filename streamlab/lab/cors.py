"""CORS for the lab server: the notebook's page (another origin) calls WHEP and the API.

The notebook is served by Jupyter on one port and the stream by the lab server on another,
so the Player's ``fetch`` is cross-origin. Only the origins allowed here may call it: by
default loopback pages (``http://127.0.0.1:*``, ``http://localhost:*``, ``http://[::1]:*``),
never an arbitrary web page the user has open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ALLOW_HEADERS = "Authorization, Content-Type, If-Match"
ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


def origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """``allowed`` holds exact origins, ``*``, or ``loopback`` (any port on this host)."""
    chosen = set(allowed)
    if "*" in chosen or origin in chosen:
        return True
    if "loopback" in chosen:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK_HOSTS
    return False


def cors_middleware(allowed: Iterable[str]) -> Middleware:
    """An aiohttp middleware answering preflights and marking responses for ``allowed``."""
    origins = tuple(allowed)

    def mark(response: web.StreamResponse, origin: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Location, ETag"
        response.headers["Vary"] = "Origin"

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not origin or not origin_allowed(origin, origins):
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = web.Response(status=204)
            mark(response, origin)
            response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
            if request.headers.get("Access-Control-Request-Private-Network") == "true":
                response.headers["Access-Control-Allow-Private-Network"] = "true"
            return response
        try:
            answered = await handler(request)
        except web.HTTPException as exc:
            mark(exc, origin)
            raise
        mark(answered, origin)
        return answered

    return cors
