"""Fuzzing with hypothesis: whatever comes in gets a 4xx or one clear line, never a 5xx, a
traceback, a dead server or a leak.

Targets: WHEP bodies and headers, SDP offers mutated from a real one, raw HTTP bytes,
``PATCH /api/streams/NAME`` settings, config values and env vars, source URLs.
``STREAMLAB_FUZZ_EXAMPLES`` sets the cases per target (default 150; the long run uses
10,000 via ``benchmarks/test_bench_soak.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import string
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import streamlab as sl
from streamlab.config import StreamingConfig
from streamlab.pipeline import LIVE_SETTINGS
from streamlab.sources.open import open_source
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server

EXAMPLES = int(os.environ.get("STREAMLAB_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
ADMIN = "fuzz-admin"


class Served:
    """A real server on its own event loop in a thread; ``run(coro)`` runs there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-server",
                                       daemon=True)  # fmt: skip
        self.thread.start()
        self.server = Server(sl.load_config(port=0, auth_token=ADMIN, max_viewers=1000,
                                            viewer_connect_timeout_s=2))  # fmt: skip
        self.server.add_stream("synthetic://?size=320x240&fps=15", name="demo")
        self.run(self.server.start())
        self.base = self.server.url
        self.offer = self.run(self._real_offer())
        self.statuses: dict[int, int] = {}

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _real_offer(self) -> str:
        client = WhepClient(self.base + "whep/demo", token=ADMIN)
        await client.connect(read_codes=False)
        offer: str = client.pc.localDescription.sdp  # type: ignore[union-attr]
        await client.close()
        return offer

    async def request(self, method: str, path: str, *, body: bytes | str = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:  # fmt: skip
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.base + path, data=body, headers=headers or {}) as r,
        ):
            text = await r.text(errors="replace")
            if r.status == 201 and "Location" in r.headers:  # a session was made: end it
                async with http.delete(self.base + r.headers["Location"].lstrip("/"),
                                       headers={"Authorization": f"Bearer {ADMIN}"}):  # fmt: skip
                    pass
            return r.status, text, dict(r.headers)

    def check(self, status: int, text: str) -> None:
        """A fuzzed request's answer: no 5xx (503 = busy is fine), one short line for errors."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
        assert status < 500 or status == 503, (status, text)
        if status >= 400:
            assert "Traceback" not in text and len(text) < 600, text
            assert "\n" not in text.strip(), text

    def alive(self) -> None:
        status, _, _ = self.run(self.request("GET", "healthz"))
        assert status in (200, 503)

    def close(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    instance = Served()
    yield instance
    instance.alive()
    sessions = len(instance.server.sessions)
    print(f"fuzz statuses: {dict(sorted(instance.statuses.items()))}; sessions left {sessions}")
    instance.close()


# --- WHEP -------------------------------------------------------------------------------

header_text = st.text(
    alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=80
)


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=3000), st.text(max_size=3000).map(str.encode)),
    content_type=st.sampled_from(["application/sdp", "text/plain", "", "application/json",
                                  "application/sdp; charset=latin-1"]) | header_text,
    token=st.sampled_from([ADMIN, "", "wrong"]) | header_text,
    stream=st.sampled_from(["demo", "nope", "d%00", "..", "demo%2F..", "x" * 300]),
)  # fmt: skip
def test_whep_bodies_and_headers(served: Served, body: bytes, content_type: str, token: str,
                                 stream: str) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if content_type:
        headers["Content-Type"] = content_type
    status, text, _ = served.run(served.request("POST", f"whep/{stream}", body=body,
                                                headers=headers))  # fmt: skip
    served.check(status, text)


# every header a client sends, with parameters and encodings: printable latin-1, no CR/LF
latin_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                            blacklist_characters="\x7f"), max_size=60)  # fmt: skip
charsets = st.sampled_from(["utf-8", "UTF-8", "latin-1", "utf-16", "utf-7", "ascii", "nope",
                            "hex", "rot13", "zlib", "base64", "idna", "", '"utf-8"', '"utf-8',
                            "utf-8; x=1", "x" * 120, "utf\xe9"]) | latin_text  # fmt: skip
media_types = st.sampled_from(["application/sdp", "application/json", "text/plain", "",
                               "application/sdp;", ";", "application/", "/"]) | latin_text  # fmt: skip


@st.composite
def content_types(draw: st.DrawFn) -> str:
    value = draw(media_types)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["charset"] * 4 + ["boundary", "q", "", "charset*"])
                    | latin_text)  # fmt: skip
        value += f"; {name}={draw(charsets)}"
    return value


@FUZZ
@example(("POST", "whep/demo"), "application/sdp; charset=nope", "", "", "", ADMIN, "utf-8")
@example(("PATCH", "api/streams/demo"), "application/json; charset=hex", "", "", "", ADMIN,
         "utf-8")  # fmt: skip
@example(("POST", "whep/demo"), 'application/sdp; charset="utf-8', "", "", "", ADMIN, "utf-16")
@given(
    method_path=st.sampled_from([("POST", "whep/demo"), ("PATCH", "api/streams/demo"),
                                 ("GET", "api/streams"), ("OPTIONS", "whep/demo")]),
    content_type=content_types(),
    accept=latin_text, origin=latin_text, authorization=latin_text,
    token=st.sampled_from([ADMIN, ADMIN, ADMIN, "", "wrong"]) | latin_text,
    body_encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
)  # fmt: skip
def test_header_parameters_and_encodings(served: Served, method_path: tuple[str, str],
                                         content_type: str, accept: str, origin: str,
                                         authorization: str, token: str,
                                         body_encoding: str) -> None:  # fmt: skip
    method, path = method_path
    body = served.offer if method == "POST" else '{"quality": "aimd"}'
    headers = {"Content-Type": content_type, "Accept": accept, "Origin": origin,
               "Authorization": f"Bearer {token}" if token else authorization}  # fmt: skip
    headers = {k: v for k, v in headers.items() if v.strip()}
    status, text, _ = served.run(served.request(method, path, body=body.encode(body_encoding),
                                                headers=headers))  # fmt: skip
    served.check(status, text)


@st.composite
def mutated_sdp(draw: st.DrawFn, offer: str) -> str:
    lines = offer.strip().split("\r\n")
    for _ in range(draw(st.integers(1, 6))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "dup", "junk", "value", "swap", "number"]))
        line = lines[index]
        if action == "drop" and len(lines) > 1:
            lines.pop(index)
        elif action == "dup":
            lines.insert(index, line)
        elif action == "junk":
            lines.insert(index, draw(st.text(max_size=60)).replace("\r", "").replace("\n", ""))
        elif action == "value" and "=" in line:
            key = line.split("=", 1)[0]
            value = draw(st.text(max_size=60)).replace("\r", "").replace("\n", "")
            lines[index] = f"{key}={value}"
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif action == "number":
            words = line.split(" ")
            spot = draw(st.integers(0, len(words) - 1))
            words[spot] = str(draw(st.integers(-(2**63), 2**64)))
            lines[index] = " ".join(words)
    return "\r\n".join(lines) + "\r\n"


@FUZZ
@given(data=st.data())
def test_sdp_offers(served: Served, data: st.DataObject) -> None:
    offer = data.draw(mutated_sdp(served.offer))
    status, text, _ = served.run(served.request(
        "POST", "whep/demo", body=offer.encode("utf-8", "surrogatepass"),
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {ADMIN}"},
    ))  # fmt: skip
    served.check(status, text)


@FUZZ
@given(raw=st.binary(min_size=1, max_size=400))
def test_raw_http_bytes(served: Served, raw: bytes) -> None:
    port = int(served.base.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    if answer.startswith(b"HTTP/"):
        # malformed HTTP is answered by aiohttp's parser before any handler: a 4xx whose
        # body is aiohttp's own message (it may show the bad bytes on a second line)
        status = int(answer.split(b" ", 2)[1])
        body = answer.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
        served.statuses[status] = served.statuses.get(status, 0) + 1
        assert 400 <= status < 500 or status in (200, 201, 204, 404), (status, body)
        assert "Traceback" not in body and len(body) < 2000


# --- PATCH /api/streams/NAME ------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=8,
)  # fmt: skip
setting_values = st.one_of(
    json_values,
    st.sampled_from(["latest", "drop_oldest:2", "every_nth:3", "none", "aimd", "vp8", "h264",
                     "fixed:320x180", "fixed:source", "rate=300k,delay=20ms", "", "motion",
                     "every_nth:0", "drop_oldest:-1", "fixed:99999x1", "bandwidth"]),
)  # fmt: skip


@FUZZ
@given(
    body=st.one_of(
        st.dictionaries(st.sampled_from(sorted(LIVE_SETTINGS)) | st.text(max_size=20),
                        setting_values, max_size=4).map(json.dumps),
        json_values.map(json.dumps),
        st.text(max_size=200),
    ),
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
    stream=st.sampled_from(["demo", "nope"]),
)  # fmt: skip
def test_patch_stream_settings(served: Served, body: str, content_type: str, stream: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    if content_type:
        headers["Content-Type"] = content_type
    status, text, _ = served.run(served.request("PATCH", f"api/streams/{stream}",
                                                body=body.encode("utf-8", "surrogatepass"),
                                                headers=headers))  # fmt: skip
    served.check(status, text)
    served.alive()


# --- config values, env vars, source URLs -----------------------------------------------

FIELDS = sorted(StreamingConfig.model_fields)


@FUZZ
@given(name=st.sampled_from(FIELDS) | st.text(max_size=20), value=setting_values)
def test_config_values(name: str, value: Any) -> None:
    try:
        sl.load_config(**{name: value})
    except sl.ConfigError as exc:
        assert "\n" not in str(exc) and "Traceback" not in str(exc)


env_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                   max_size=60)  # fmt: skip


@FUZZ
@given(name=st.sampled_from(FIELDS), value=env_text)
def test_config_env_vars(name: str, value: str) -> None:
    key = f"STREAMING_{name.upper()}"
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        sl.load_config()
    except sl.ConfigError as exc:
        assert "\n" not in str(exc) and "Traceback" not in str(exc)
    finally:
        if old is None:
            del os.environ[key]
        else:
            os.environ[key] = old


url_parts = st.text(alphabet=string.ascii_letters + string.digits + ":/@?&=%.[]-_~ #", max_size=40)


@FUZZ
@given(
    url=st.one_of(
        st.text(max_size=80),
        st.tuples(st.sampled_from(["rtsp://", "rtsps://", "synthetic://", "file://", "http://",
                                   "RTSP://", ""]), url_parts).map("".join),
        st.tuples(st.just("synthetic://?"), st.dictionaries(
            st.sampled_from(["size", "fps", "objects", "seed", "frames", "realtime", "x"]),
            st.text(alphabet=string.printable, max_size=12), max_size=4,
        )).map(lambda p: p[0] + "&".join(f"{k}={v}" for k, v in p[1].items())),
    ),
)  # fmt: skip
def test_source_urls(url: str) -> None:
    try:
        source = open_source(url)
    except sl.StreamlabError as exc:
        assert "\n" not in str(exc) and "Traceback" not in str(exc)
        return
    assert not source.running  # opening never connects: nothing to clean up
