"""Janus's HTTP API, as far as a Streaming plugin handle needs it (``JanusSession``).

One session with one handle attached to ``janus.plugin.streaming``: synchronous plugin
requests (``create``, ``info``, ``destroy``, ``list``) answer in the POST's reply; the
viewer's ``watch`` / ``start`` answer with an ``ack`` and deliver their result (and Janus's
offer) as an event, read by long-polling the session. Every call has a timeout; every failure
is a ``JanusError`` (a ``ConnectionError``), never a hang.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp

from streamlab.errors import StreamlabError

STREAMING = "janus.plugin.streaming"
REQUEST_TIMEOUT_S = 5.0
NO_SUCH_SESSION = 458
NO_SUCH_MOUNTPOINT = 455


class JanusError(StreamlabError, ConnectionError):
    """Janus could not be reached, or refused a request (``code`` from Janus, if any)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class JanusSession:
    """A Janus session with one Streaming plugin handle; ``await open()`` then requests."""

    def __init__(self, url: str, *, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.session_id: int | None = None
        self.handle_id: int | None = None
        self._http: aiohttp.ClientSession | None = None

    async def open(self) -> JanusSession:
        """Create the session and attach the Streaming plugin (JanusError if Janus fails)."""
        await self.close()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        created = await self._post(self.url, {"janus": "create"})
        self.session_id = int(created["data"]["id"])
        attached = await self._post(f"{self.url}/{self.session_id}",
                                    {"janus": "attach", "plugin": STREAMING})  # fmt: skip
        self.handle_id = int(attached["data"]["id"])
        return self

    @property
    def is_open(self) -> bool:
        return self.handle_id is not None and self._http is not None

    async def keepalive(self) -> None:
        """Keep the session alive; JanusError (code 458) once Janus has forgotten it."""
        await self._post(self._session_url(), {"janus": "keepalive"})

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous Streaming request; its ``plugindata.data`` (JanusError on error)."""
        reply = await self._post(self._handle_url(), {"janus": "message", "body": body})
        data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
        if "error_code" in data or "error" in data:
            raise JanusError(f"Janus streaming: {data.get('error', 'error')}",
                             data.get("error_code"))  # fmt: skip
        return data

    async def send(self, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> None:
        """An asynchronous Streaming request (``watch``, ``start``): Janus acks it, the
        result comes as an event (``next_event``)."""
        message: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        await self._post(self._handle_url(), message)

    async def next_event(self, within_s: float = 20.0) -> dict[str, Any]:
        """The next plugin event of this handle (long-poll; JanusError after ``within_s``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while loop.time() < deadline:
            http = self._client()
            poll = aiohttp.ClientTimeout(total=min(35.0, deadline - loop.time() + 1.0))
            try:
                async with http.get(f"{self._session_url()}?maxev=1&rid={secrets.randbits(31)}",
                                    timeout=poll) as response:  # fmt: skip
                    event = await response.json(content_type=None)
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                raise JanusError(f"Janus at {self.url}: {_describe(exc)}") from None
            if isinstance(event, list):
                event = event[0] if event else {}
            if event.get("janus") == "error":
                error = event.get("error", {})
                raise JanusError(f"Janus: {error.get('reason')}", error.get("code"))
            if event.get("janus") == "event" and event.get("sender") == self.handle_id:
                return dict(event)
        raise JanusError(f"Janus at {self.url}: no event within {within_s:g} s")

    async def close(self, *, destroy: bool = True) -> None:
        """Destroy the session on Janus (best effort) and close the HTTP client."""
        http, self._http = self._http, None
        if http is None:
            return
        try:
            if destroy and self.session_id is not None:
                async with http.post(f"{self.url}/{self.session_id}",
                                     json=_with_transaction({"janus": "destroy"})):  # fmt: skip
                    pass
        except (TimeoutError, aiohttp.ClientError, OSError):
            pass
        finally:
            self.session_id = self.handle_id = None
            await http.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise JanusError("the Janus session is not open")
        return self._http

    def _session_url(self) -> str:
        if self.session_id is None:
            raise JanusError("the Janus session is not open")
        return f"{self.url}/{self.session_id}"

    def _handle_url(self) -> str:
        if self.handle_id is None:
            raise JanusError("the Janus session is not open")
        return f"{self._session_url()}/{self.handle_id}"

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._client().post(url, json=_with_transaction(body)) as response:
                if response.status >= 400:
                    raise JanusError(f"Janus at {self.url}: HTTP {response.status}")
                reply = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise JanusError(f"Janus at {self.url}: {_describe(exc)}") from None
        if not isinstance(reply, dict):
            raise JanusError(f"Janus at {self.url}: unexpected reply {reply!r:.80}")
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusError(f"Janus: {error.get('reason')}", error.get("code"))
        return reply


def _with_transaction(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "transaction": secrets.token_hex(6)}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    return str(exc) or type(exc).__name__
