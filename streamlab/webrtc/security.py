"""Who may do what over HTTP, which other origins may call us, and HTTPS.

- Two Bearer tokens: ``viewer_token`` may watch (the page, ``GET /api/streams``, WHEP);
  ``auth_token`` is the admin token and may also change settings (``PATCH /api/...``) and
  read ``/metrics``. No token configured: everything is open (loopback by default).
  Tokens are compared in constant time (``hmac.compare_digest`` on their SHA-256).
- CORS for WHEP players and tools on other origins: ``cors_origins`` is the allow-list
  (``*`` = any); preflights are answered here; ``Location``, ``Link``, ``ETag`` and
  ``Accept-Post`` are exposed so a WHEP player can find its session.
- TLS from ``tls_cert`` / ``tls_key`` (PEM files).
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
from collections.abc import Awaitable, Callable
from enum import IntEnum

from aiohttp import web

from streamlab.config import StreamingConfig
from streamlab.errors import ConfigError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, If-Match"
EXPOSE_HEADERS = "Location, Link, ETag, Accept-Post"


class Role(IntEnum):
    """What a request may do; each role may do everything the lower ones may."""

    ANYONE = 0
    VIEWER = 1
    ADMIN = 2


def required_role(request: web.Request) -> Role:
    """The role a request needs: changing settings and reading metrics are for admins."""
    path = request.path
    if path == "/metrics" or (path.startswith("/api/") and request.method not in ("GET", "HEAD")):
        return Role.ADMIN
    if path.startswith(("/api/", "/whep/")):
        return Role.VIEWER
    return Role.ANYONE


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def bearer(request: web.Request) -> str:
    """The Bearer token of a request ("" when there is none)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def role_of(token: str, config: StreamingConfig) -> Role:
    """The role ``token`` grants. Both tokens are always compared, in constant time."""
    given = _digest(token)
    admin = bool(config.auth_token) & hmac.compare_digest(given, _digest(config.auth_token or ""))
    viewer = bool(config.viewer_token) & hmac.compare_digest(
        given, _digest(config.viewer_token or "")
    )
    if admin:
        return Role.ADMIN
    return Role.VIEWER if viewer else Role.ANYONE


def authorize(request: web.Request, config: StreamingConfig, needed: Role | None = None) -> None:
    """Raise 401 (no or wrong token) or 403 (a viewer token where admin is needed)."""
    if not config.auth_token and not config.viewer_token:
        return
    needed = required_role(request) if needed is None else needed
    if needed is Role.ANYONE:
        return
    role = role_of(bearer(request), config)
    if role is Role.ANYONE:
        raise web.HTTPUnauthorized(text="missing or wrong bearer token",
                                   headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    if role < needed:
        raise web.HTTPForbidden(text="this token may only watch; changing settings and "
                                     "reading metrics need the admin token")  # fmt: skip


def _allowed_origin(origin: str, config: StreamingConfig) -> bool:
    allowed = config.cors_origins
    return bool(origin) and ("*" in allowed or origin.lower() in allowed)


def _cors_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Expose-Headers": EXPOSE_HEADERS}  # fmt: skip


def cors_middleware(config: StreamingConfig) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware: CORS for the origins in ``config.cors_origins`` (none: off)."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        if not config.cors_origins or not origin:
            return await handler(request)
        allowed = _allowed_origin(origin, config)
        asks = "Access-Control-Request-Method" in request.headers
        if request.method == "OPTIONS" and asks:  # a preflight
            if not allowed:
                return web.Response(status=403, text=f"origin {origin[:200]!r} is not allowed")
            headers = {**_cors_headers(origin), "Access-Control-Allow-Methods": ALLOW_METHODS,
                       "Access-Control-Allow-Headers": ALLOW_HEADERS,
                       "Access-Control-Max-Age": "600"}  # fmt: skip
            return web.Response(status=204, headers=headers)
        if not allowed:
            return await handler(request)  # no CORS headers: the browser keeps it private
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # errors must be readable by the player too
            exc.headers.update(_cors_headers(origin))
            raise
        response.headers.update(_cors_headers(origin))
        return response

    return cors


def tls_context(config: StreamingConfig) -> ssl.SSLContext | None:
    """The server's TLS context from ``tls_cert``/``tls_key`` (None: plain HTTP)."""
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot load the TLS certificate {config.tls_cert} with key "
                          f"{config.tls_key}: {reason}") from None  # fmt: skip
    return context
