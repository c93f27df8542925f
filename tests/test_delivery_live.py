"""Delivery strategies while the stream runs, with real aiortc viewers on 127.0.0.1:
live quality and codec, a codec per viewer, bandwidth adaptation behind emulated links,
keyframe discipline, network conditions, and the settings API."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp
import pytest

import streamlab as sl
from streamlab.clock import now
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server


def config(**extra: Any) -> sl.StreamingConfig:
    return sl.load_config(port=0, **extra)


async def api(method: str, url: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    data = body if isinstance(body, str) else (json.dumps(body) if body is not None else None)
    kind = {"Content-Type": "application/json"} if body is not None else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, data=data, headers={**kind, **headers}) as response,
    ):
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


def frames_after(client: WhepClient, since: float) -> list[float]:
    return [t for t in client.received.arrivals if t >= since]


def max_gap_s(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))


async def viewer_ids(server: Server, name: str) -> list[str]:
    return list(server.streams[name].fanout.viewers)


async def test_a_quality_change_reaches_connected_viewers_in_the_same_session() -> None:
    server = Server(config())
    server.add_stream("synthetic://?size=640x480&fps=30", name="demo")
    async with server:
        client = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await client.wait_frames(20)
        assert client.received.frame_sizes[-1] == (640, 480), "default: the source, no resize"
        status, body = await api("PATCH", f"{server.url}api/streams/demo",
                                 {"quality": "fixed:320x180"})  # fmt: skip
        changed_at = now()
        assert status == 200 and body["settings"]["quality"] == "fixed:320x180"
        for _ in range(50):
            if client.received.frame_sizes[-1] == (240, 180):
                break
            await asyncio.sleep(0.1)
        seen_at = client.received.arrivals[-1]
        assert client.received.frame_sizes[-1] == (240, 180)
        print(f"quality change to the viewer in {1000 * (seen_at - changed_at):.0f} ms")
        await server.update("demo", quality="fixed:source")
        await client.wait_frames(client.received.frames + 40)
        assert client.received.frame_sizes[-1] == (640, 480)
        frames_before = client.received.frames
        assert client.pc is not None and client.pc.connectionState == "connected"
        await client.close()
    assert frames_before > 60


async def test_vp8_only_and_h264_only_viewers_of_one_stream_both_play() -> None:
    server = Server(config(codec="vp8"))
    stream = server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        vp8 = await WhepClient(f"{server.url}whep/demo", codecs=("video/VP8",)).connect()
        h264 = await WhepClient(f"{server.url}whep/demo", codecs=("video/H264",)).connect()
        await asyncio.gather(vp8.wait_frames(30), h264.wait_frames(30))
        encoders = {str(key) for key in stream.fanout.encoders}
        viewers = {v["codec"] for v in (await api("GET", f"{server.url}api/streams"))[1]
                   ["streams"][0]["viewers"]}  # fmt: skip
        await vp8.close()
        await asyncio.sleep(0.3)
        left = {str(key) for key in stream.fanout.encoders}
        await h264.close()
    assert (vp8.codec, h264.codec) == ("video/VP8", "video/H264")
    assert vp8.received.codes >= 20 and h264.received.codes >= 20
    assert encoders == {"vp8/source", "h264/source"}, "one encoder per codec in use"
    assert viewers == {"vp8", "h264"}
    assert left == {"h264/source"}, "an encoder stops with its last viewer"
    assert stream.fanout.encoders == {}


@pytest.mark.parametrize(("rate", "fits_bps"), [("800k", 800_000), ("300k", 300_000)])
async def test_bandwidth_viewer_settles_on_a_rung_that_fits(rate: str, fits_bps: int) -> None:
    server = Server(config(quality="bandwidth"))
    stream = server.add_stream("synthetic://?size=1280x720&fps=30", name="demo")
    async with server:
        limited = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await limited.wait_frames(1)
        (limited_id,) = await viewer_ids(server, "demo")
        status, info = await api("PATCH", f"{server.url}api/streams/demo/viewers/{limited_id}",
                                 {"network": f"rate={rate}"})  # fmt: skip
        assert status == 200 and info["network"] == f"rate={rate}"
        free = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await asyncio.sleep(10)  # settle
        settled = now()
        rung = stream.fanout.viewer_info(stream.fanout.viewers[limited_id])
        changes = rung["quality_changes"]
        await asyncio.sleep(5)
        after = stream.fanout.viewer_info(stream.fanout.viewers[limited_id])
        free_id = next(v for v in stream.fanout.viewers if v != limited_id)
        free_info = stream.fanout.viewer_info(stream.fanout.viewers[free_id])
        limited_frames = frames_after(limited, settled)
        free_frames = frames_after(free, settled)
        await limited.close()
        await free.close()
    print(f"{rate}: settled on {rung['rung']} ({rung['target_bps']} bit/s), "
          f"{len(limited_frames) / 5:.1f} fps, longest gap {max_gap_s(limited_frames):.3f} s; "
          f"unlimited viewer on {free_info['rung']} at {len(free_frames) / 5:.1f} fps")  # fmt: skip
    # the rungs are 1.8-2.3x apart (138k, 311k, 553k, 1.24M); 10 % over the link still fits
    # when a starved CPU makes the encoder undershoot (311k on 300k, 0 loss, at 15 fps once)
    assert rung["target_bps"] <= fits_bps * 1.1, "a rung whose bitrate fits the link"
    assert after["target_bps"] <= fits_bps * 1.1, "probes never leave it on a rung too big"
    assert after["quality_changes"] - changes <= 2, "settled: at most a probe up and back"
    assert len(limited_frames) >= 5 * 6, "plays after settling"
    assert max_gap_s(limited_frames) < 1.0, "no freeze after settling"
    # viewers start on the rung the start estimate affords and climb as probes and the
    # receiver's REMB allow (10-25 s to the top rung on a free link): the limit of one viewer
    # must not hold the other back
    ladder = [r["name"] for r in stream.fanout.stats()["ladder"]]
    assert ladder.index(free_info["rung"]) <= ladder.index(after["rung"]), "not held back"
    assert len(free_frames) >= 5 * 8


@pytest.mark.parametrize("loss", ["5%", "25%"])
async def test_a_lossy_viewer_cannot_flood_the_others_with_keyframes(loss: str) -> None:
    server = Server(config(quality="fixed:source", keyframe_min_interval_ms=500))
    stream = server.add_stream("synthetic://?size=640x480&fps=30", name="demo")
    async with server:
        lossy = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await lossy.wait_frames(1)
        (lossy_id,) = await viewer_ids(server, "demo")
        await server.update_viewer("demo", lossy_id, network=f"loss={loss}")
        clean = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await clean.wait_frames(10)
        started = now()
        (encoder,) = stream.fanout.encoders.values()
        keyframes_before = encoder.encoder.keyframes
        plis = 0
        while now() - started < 8:
            # the worst a broken decoder does: a PLI every 50 ms, through its lossy link
            plis += await lossy.request_keyframe()
            await asyncio.sleep(0.05)
        elapsed = now() - started
        keyframes = encoder.encoder.keyframes - keyframes_before
        lossy_info = stream.fanout.viewer_info(stream.fanout.viewers[lossy_id])
        clean_frames = frames_after(clean, started)
        await lossy.close()
        await clean.close()
    print(
        f"{loss} loss: {plis} PLIs sent, {lossy_info['keyframe_requests']} keyframe requests "
        f"received, {lossy_info['nacks']} NACKed, {lossy_info['retransmitted']} resent; "
        f"{keyframes} keyframes in {elapsed:.1f} s"
    )
    assert lossy_info["nacks"] > 0 and lossy_info["retransmitted"] > 0, "losses were repaired"
    assert lossy_info["keyframe_requests"] >= 20, "the lossy viewer's PLIs reached the server"
    assert 2 <= keyframes <= elapsed / 0.5 + 2, "answered, at most one keyframe per 500 ms"
    assert len(clean_frames) >= elapsed * 8, "the clean viewer keeps playing"


async def test_network_conditions_are_measured_through_the_link() -> None:
    server = Server(config(quality="fixed:source"))
    stream = server.add_stream("synthetic://?size=640x480&fps=30", name="demo")
    async with server:
        client = WhepClient(f"{server.url}whep/demo", data_channel=False)
        await client.connect(read_codes=False)  # only RTP/RTCP on the wire: the link's traffic
        await client.wait_frames(30)
        (viewer_id,) = await viewer_ids(server, "demo")
        viewer = stream.fanout.viewers[viewer_id]
        rtt_plain = await settle_rtt(viewer)
        await server.update("demo", network="delay=60ms")
        rtt_delayed = await settle_rtt(viewer)
        await server.update("demo", network="rate=400k,queue=300ms")
        await asyncio.sleep(2)
        start_bytes, start = await received_bytes(client), now()
        await asyncio.sleep(4)
        rate = (await received_bytes(client) - start_bytes) * 8 / (now() - start)
        listed = (await api("GET", f"{server.url}api/streams"))[1]["streams"][0]
        await client.close()
    added = rtt_delayed - rtt_plain
    print(f"link delay 60 ms measured as +{added * 1000:.1f} ms RTT; rate 400k received at "
          f"{rate / 1000:.0f} kbit/s")  # fmt: skip
    assert added == pytest.approx(0.060, abs=0.01)
    assert rate == pytest.approx(400_000, rel=0.1)
    assert listed["settings"]["network"] == "rate=400k,queue=300ms"
    assert listed["viewers"][0]["network"] == "rate=400k,queue=300ms"


async def received_bytes(client: WhepClient) -> int:
    stats = await client.pc.getStats()  # type: ignore[union-attr]
    return sum(s.bytesReceived for s in stats.values() if s.type == "transport")


async def settle_rtt(viewer: Any) -> float:
    samples = []
    for _ in range(24):
        await asyncio.sleep(0.25)
        if viewer.estimator.rtt_s is not None:
            samples.append(viewer.estimator.rtt_s)
    return sorted(samples[-12:])[len(samples[-12:]) // 2]


async def test_settings_api_applies_validates_and_guards() -> None:
    server = Server(config(auth_token="s3cret"))
    server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    auth = {"Authorization": "Bearer s3cret"}
    async with server:
        base = f"{server.url}api/streams/demo"
        ok = await api("PATCH", base, {"skipping": "every_nth:3", "network": "delay=10ms"}, **auth)
        results = {
            "no token": await api("PATCH", base, {"quality": "aimd"}),
            "bad value": await api("PATCH", base, {"quality": "fixed:999x1"}, **auth),
            "bad network": await api("PATCH", base, {"network": "rate=fast"}, **auth),
            "not live": await api("PATCH", base, {"port": 1}, **auth),
            "unknown stream": await api("PATCH", f"{server.url}api/streams/nope", {}, **auth),
            "not json": await api("PATCH", base, "{nope", **auth),
            "not an object": await api("PATCH", base, "[1, 2]", **auth),
            "form": await api("PATCH", base, None, **auth),
            "no viewer": await api("PATCH", f"{base}/viewers/zzz", {"network": ""}, **auth),
            "passthrough": await api("PATCH", base, {"codec": "passthrough"}, **auth),
        }
        settings = (await api("GET", f"{server.url}api/streams", **auth))[1]["streams"][0]
    assert ok[0] == 200 and ok[1]["settings"]["skipping"] == "every_nth:3"
    assert ok[1]["settings"]["network"] == "delay=10ms"
    statuses = {name: status for name, (status, _) in results.items()}
    assert statuses == {"no token": 401, "bad value": 400, "bad network": 400, "not live": 400,
                        "unknown stream": 404, "not json": 400, "not an object": 400,
                        "form": 415, "no viewer": 404, "passthrough": 400}  # fmt: skip
    assert "unknown quality level" in results["bad value"][1]
    assert all("\n" not in str(body) and "Traceback" not in str(body)
               for _, body in results.values())  # fmt: skip
    assert settings["settings"]["quality"] == "fixed:source", "a rejected change changed nothing"


async def test_a_codec_change_tells_viewers_to_reconnect() -> None:
    server = Server(config(codec="vp8", analyze=["motion"]))
    server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        client = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await client.wait_frames(10)
        await server.update("demo", codec="h264")
        for _ in range(30):
            if any(m.get("type") == "reconnect" for m in client.received.messages):
                break
            await asyncio.sleep(0.1)
        again = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await again.wait_frames(10)
        await client.close()
        await again.close()
    told = [m for m in client.received.messages if m.get("type") == "reconnect"]
    assert told and "h264" in told[0]["reason"]
    assert client.codec == "video/VP8" and again.codec == "video/H264"
    analysis = [m for m in client.received.messages if m.get("type") == "analysis"]
    assert analysis and all("rtp_timestamp" in m for m in analysis[-5:])


async def test_a_per_viewer_quality_moves_only_that_viewer_and_null_follows_the_stream() -> None:
    # H.264: libvpx with 2 threads can spin for good under load (PyAV 18; the
    # encoder_threads setting warns about libvpx), and this checks only that the setting
    # reaches every shared encoder
    server = Server(config(encoder_threads=2, codec="h264"))
    stream = server.add_stream("synthetic://?size=640x480&fps=30", name="demo")
    async with server:
        small = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        other = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await asyncio.gather(small.wait_frames(20), other.wait_frames(20))
        assert small.location is not None
        small_id = small.location.rstrip("/").rsplit("/", 1)[-1]
        assert small_id in stream.fanout.viewers
        url = f"{server.url}api/streams/demo/viewers/{small_id}"
        status, info = await api("PATCH", url, {"quality": "fixed:320x180"})
        assert status == 200 and info["quality"] == "fixed:320x180"
        await small.wait_frames(small.received.frames + 40)
        await other.wait_frames(other.received.frames + 10)
        sizes = (small.received.frame_sizes[-1], other.received.frame_sizes[-1])
        threads = {e.key.rung: e.encoder.threads for e in stream.fanout.encoders.values()}
        status, _ = await api("PATCH", url, {"quality": None})  # follow the stream again
        await small.wait_frames(small.received.frames + 40)
        back = small.received.frame_sizes[-1]
        bad, _ = await api("PATCH", url, {"quality": "fixed:99x99x"})
        await asyncio.gather(small.close(), other.close())
    assert sizes == ((240, 180), (640, 480)), "only the patched viewer moved"
    assert status == 200 and back == (640, 480)
    assert bad == 400
    assert threads == {"320x180": 2, "source": 2}, "encoder_threads reaches every shared encoder"
