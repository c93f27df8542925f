"""Security with real parts: token roles, CORS, TLS, redaction, TURN (Debian's coturn)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

import streamlab as sl
from streamlab.camera.launcher import TestCamera, free_port
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.ice import local_addresses
from streamlab.webrtc.peer import close_peer
from streamlab.webrtc.server import Server

SYNTH = "synthetic://?size=320x240&fps=30"
ADMIN, VIEWER = "admin-s3cret-token", "viewer-s3cret-token"
JSON = {"Content-Type": "application/json"}


def config(**extra: object) -> sl.StreamingConfig:
    return sl.load_config(port=0, **extra)


async def http(method: str, url: str, *, token: str | None = None, ssl_context: Any = None,
               **kwargs: Any) -> tuple[int, str, dict[str, str]]:  # fmt: skip
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connector = aiohttp.TCPConnector(ssl=ssl_context) if ssl_context is not None else None
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, url, headers=headers, **kwargs) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


# --- roles ------------------------------------------------------------------------------


async def test_viewer_token_may_watch_admin_token_may_also_change_and_read_metrics() -> None:
    server = Server(config(auth_token=ADMIN, viewer_token=VIEWER))
    server.add_stream(SYNTH, name="demo")
    patch = {"data": '{"skipping": "every_nth:2"}', "headers": JSON}
    async with server:
        base = server.url
        seen: dict[str, dict[str | None, int]] = {}
        for token in (None, "wrong", VIEWER, ADMIN):
            for label, method, path, extra in (
                ("page", "GET", "", {}),
                ("healthz", "GET", "healthz", {}),
                ("list", "GET", "api/streams", {}),
                ("metrics", "GET", "metrics", {}),
                ("patch", "PATCH", "api/streams/demo", patch),
            ):
                status, _, _ = await http(method, base + path, token=token, **extra)
                seen.setdefault(label, {})[token] = status
        viewer = await WhepClient(base + "whep/demo", token=VIEWER).connect(read_codes=False)
        await viewer.wait_frames(5)
        viewer_id = next(iter(server.streams["demo"].fanout.viewers))
        viewer_patch = await http(
            "PATCH",
            f"{base}api/streams/demo/viewers/{viewer_id}",
            token=VIEWER,
            data='{"network": "rate=300k"}',
            headers=JSON,
        )
        assert await viewer.close() == 200  # a viewer may end its own session
        with pytest.raises(sl.NegotiationError, match="401"):
            await WhepClient(base + "whep/demo", token="wrong").connect()
        lower = await http(
            "GET", base + "api/streams", headers={"Authorization": f"bearer {ADMIN}"}
        )
    assert seen == {
        "page": {None: 200, "wrong": 200, VIEWER: 200, ADMIN: 200},
        "healthz": {None: 200, "wrong": 200, VIEWER: 200, ADMIN: 200},
        "list": {None: 401, "wrong": 401, VIEWER: 200, ADMIN: 200},
        "metrics": {None: 401, "wrong": 401, VIEWER: 403, ADMIN: 200},
        "patch": {None: 401, "wrong": 401, VIEWER: 403, ADMIN: 200},
    }
    assert viewer_patch[0] == 403 and "admin token" in viewer_patch[1]
    assert lower[0] == 200  # the scheme name is case-insensitive


def test_token_roles_are_compared_in_constant_time_on_digests() -> None:
    import inspect

    from streamlab.webrtc import security

    settings = sl.load_config(auth_token=ADMIN, viewer_token=VIEWER)
    assert security.role_of(ADMIN, settings) is security.Role.ADMIN
    assert security.role_of(VIEWER, settings) is security.Role.VIEWER
    assert security.role_of(ADMIN[:-1], settings) is security.Role.ANYONE
    assert security.role_of("", settings) is security.Role.ANYONE
    assert "compare_digest" in inspect.getsource(security.role_of)


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"viewer_token": VIEWER}, "viewer_token needs auth_token"),
        ({"cors_origins": ["javascript:alert(1)"]}, "cors_origins"),
        ({"tls_cert": "/no/such/cert.pem"}, "no such file"),
    ],
)
def test_security_settings_are_validated_in_one_line(settings: dict[str, Any], needle: str) -> None:
    with pytest.raises(sl.ConfigError, match=needle) as caught:
        sl.load_config(**settings)
    assert "\n" not in str(caught.value)
    assert VIEWER not in str(caught.value)  # a secret is never echoed


# --- CORS -------------------------------------------------------------------------------


async def test_cors_allow_list_for_whep_players() -> None:
    player = "http://player.example:8000"
    server = Server(config(cors_origins=[player], auth_token=ADMIN))
    server.add_stream(SYNTH, name="demo")
    preflight = {"Origin": player, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}  # fmt: skip
    async with server:
        base = server.url
        ok = await http("OPTIONS", base + "whep/demo", headers=preflight)
        evil = await http("OPTIONS", base + "whep/demo",
                          headers={**preflight, "Origin": "http://evil.example"})  # fmt: skip
        api_preflight = await http(
            "OPTIONS",
            base + "api/streams/demo",
            headers={**preflight, "Access-Control-Request-Method": "PATCH"},
        )
        plain_options = await http("OPTIONS", base + "whep/demo")  # WHEP's own OPTIONS
        client = WhepClient(base + "whep/demo", token=ADMIN)
        await client.connect(read_codes=False)
        offer = client.pc.localDescription.sdp  # type: ignore[union-attr]
        await client.close()
        post = await http(
            "POST",
            base + "whep/demo",
            token=ADMIN,
            data=offer,
            headers={"Origin": player, "Content-Type": "application/sdp"},
        )
        denied = await http("GET", base + "api/streams", headers={"Origin": player})
        other = await http("GET", base + "api/streams", token=ADMIN,
                           headers={"Origin": "http://evil.example"})  # fmt: skip
        if post[0] == 201:
            await http("DELETE", base + post[2]["Location"].lstrip("/"), token=ADMIN)
    status, _, headers = ok
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == player
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert evil[0] == 403 and "Access-Control-Allow-Origin" not in evil[2]
    assert api_preflight[0] == 204 and "PATCH" in api_preflight[2]["Access-Control-Allow-Methods"]
    assert plain_options[0] == 204 and plain_options[2]["Accept-Post"] == "application/sdp"
    assert post[0] == 201
    assert post[2]["Access-Control-Allow-Origin"] == player
    exposed = {h.strip() for h in post[2]["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Link"} <= exposed
    assert denied[0] == 401 and denied[2]["Access-Control-Allow-Origin"] == player
    assert other[0] == 200 and "Access-Control-Allow-Origin" not in other[2]


async def test_no_cors_headers_without_an_allow_list() -> None:
    server = Server(config())
    server.add_stream(SYNTH, name="demo")
    async with server:
        status, _, headers = await http("GET", server.url + "api/streams",
                                        headers={"Origin": "http://player.example"})  # fmt: skip
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


# --- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def whep(url: str, configuration: RTCConfiguration, *, frames: int = 10,
               ssl_context: Any = None, token: str | None = None) -> RTCPeerConnection:  # fmt: skip
    """A WHEP viewer built by hand (for TLS trust and relay-only ICE): returns the peer once
    ``frames`` frames arrived."""
    with local_addresses(("127.0.0.1",)):
        pc = RTCPeerConnection(configuration)
        pc.addTransceiver("video", direction="recvonly")
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        @pc.on("track")
        def on_track(track: Any) -> None:
            if not got.done():
                got.set_result(track)

        await pc.setLocalDescription(await pc.createOffer())
    status, answer, _ = await http("POST", url, token=token, ssl_context=ssl_context,
                                   data=pc.localDescription.sdp,
                                   headers={"Content-Type": "application/sdp"})  # fmt: skip
    assert status == 201, answer
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    track = await asyncio.wait_for(got, 20)
    for _ in range(frames):
        await asyncio.wait_for(track.recv(), 20)
    return pc


async def test_tls_serving_with_a_self_signed_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = Server(config(tls_cert=str(cert), tls_key=str(key)))
    server.add_stream(SYNTH, name="demo")
    trust = ssl.create_default_context(cafile=str(cert))
    async with server:
        assert server.url.startswith("https://127.0.0.1:")
        page = await http("GET", server.url, ssl_context=trust)
        with pytest.raises(aiohttp.ClientError):  # not trusted by default: really TLS
            await http("GET", server.url)
        with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served
            await http("GET", server.url.replace("https", "http"))
        pc = await whep(server.url + "whep/demo", RTCConfiguration(iceServers=[]),
                        ssl_context=trust)  # fmt: skip
        await close_peer(pc)
    assert page[0] == 200 and "<html" in page[1].lower()


async def test_a_bad_certificate_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    server = Server(config(tls_cert=str(junk), tls_key=str(junk)))
    with pytest.raises(sl.ConfigError, match="cannot load the TLS certificate") as caught:
        await server.start()
    await server.stop()
    assert "\n" not in str(caught.value)


# --- credentials never leak -------------------------------------------------------------


async def test_camera_credentials_are_redacted_everywhere(
    camera: TestCamera, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "hunter2camera"
    url = camera.url.replace("rtsp://", f"rtsp://admin:{secret}@")
    server = Server(config(auth_token=ADMIN, viewer_token=VIEWER))
    server.add_stream(url, name="cam")
    async with server:
        client = await WhepClient(server.url + "whep/cam", token=VIEWER).connect(read_codes=False)
        await client.wait_frames(5)
        outputs = [await http("GET", server.url + path, token=ADMIN)
                   for path in ("api/streams", "metrics", "healthz")]  # fmt: skip
        await client.close()
    text = " ".join(body + str(headers) for _, body, headers in outputs)
    text += capsys.readouterr().out + capsys.readouterr().err
    assert all(status == 200 for status, _, _ in outputs)
    assert "127.0.0.1" in outputs[0][1] and "***@" in outputs[0][1]
    assert secret not in text and "admin:" not in text
    assert ADMIN not in text and VIEWER not in text


# --- TURN -------------------------------------------------------------------------------


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """Debian's coturn on 127.0.0.1 with one long-term user: (url, user, password)."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.skip("needs Debian's coturn (scripts/system-deps.sh installs it)")
    port = free_port()
    low = 40000 + (port % 200) * 100
    user, password = "streamlab", "turn-s3cret"
    process = subprocess.Popen(
        [binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", f"--min-port={low}", f"--max-port={low + 99}",
         "--lt-cred-mech", f"--user={user}:{password}", "--realm=streamlab", "--fingerprint",
         "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli", "--no-tcp-relay",
         f"--pidfile={tmp_path / 'turn.pid'}", f"--log-file={tmp_path / 'turn.log'}",
         "--simple-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(50):
            log = tmp_path / "turn.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            # its relay servers are up: "Total UDP servers" (coturn < 4.6), "Total General
            # servers" (4.6, Debian 12), which never printed the former: 5 s lost each run
            if "Total UDP servers" in text or "Total General servers" in text:
                break
            if process.poll() is not None:
                pytest.fail(f"turnserver exited: {log.read_text(errors='replace')[-500:]}")
            subprocess.run(["sleep", "0.1"], check=True)
        yield f"turn:127.0.0.1:{port}?transport=udp", user, password
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        if process.poll() is None:
            process.kill()
            process.wait(5)


async def test_relay_only_viewer_through_coturn(coturn: tuple[str, str, str]) -> None:
    url, user, password = coturn
    relay_only = RTCConfiguration(
        iceServers=[RTCIceServer(urls=url, username=user, credential=password)],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )
    server = Server(config())
    server.add_stream(SYNTH, name="demo")
    async with server:
        pc = await whep(server.url + "whep/demo", relay_only, frames=20)
        offer = pc.localDescription.sdp
        pair = None
        for transceiver in pc.getTransceivers():
            ice = transceiver.receiver.transport.transport
            pair = ice._connection._nominated.get(1)  # the selected pair of component 1
        await close_peer(pc)
    candidates = [line for line in offer.splitlines() if line.startswith("a=candidate:")]
    assert candidates and all(" typ relay" in line for line in candidates)
    assert pair is not None and pair.local_candidate.type == "relay"
    print(f"relay-only: selected pair {pair.local_candidate.host}:{pair.local_candidate.port} "
          f"(relay) -> {pair.remote_candidate.host}:{pair.remote_candidate.port}")  # fmt: skip
