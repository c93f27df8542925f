"""WHEP delivery with real aiortc peers, from the real RTSP test camera, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import statistics

import aiohttp
import pytest
from aiortc import RTCPeerConnection

import streamlab as sl
from streamlab.camera.launcher import TestCamera
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server


def config(**extra: object) -> sl.StreamingConfig:
    return sl.load_config(port=0, reconnect_initial_s=0.05, **extra)


@pytest.mark.parametrize("codec", ["vp8", "h264", "passthrough"])
async def test_each_codec_delivers_the_camera_with_measurable_latency(
    camera: TestCamera, codec: str
) -> None:
    server = Server(config(analyze=["motion"]))
    stream = server.add_stream(camera.url, name="cam", codec=codec)
    async with server:
        client = await WhepClient(f"{server.url}whep/cam").connect()
        received = await client.wait_frames(60)
        assert await client.close() == 200
        delivery = stream.fanout.stats()
    assert client.codec == ("video/VP8" if codec == "vp8" else "video/H264")
    assert received.codes >= 50, "frame codes survive the whole path"
    seqs = received.seqs
    assert seqs == sorted(seqs)
    latency = statistics.median(received.latencies_ms)
    print(f"{codec}: aiortc receiver latency p50 {latency:.0f} ms over {len(seqs)} frames")
    assert 0 < latency < 2000
    assert any("analysis" in m for m in received.messages)
    if codec == "passthrough":
        # at most a bridge until the camera's first keyframe (one per second) after the join
        assert delivery["bridges"] <= 1 and delivery["frames_encoded"] <= 45
        assert delivery["encoders"] == [], "the bridge's transcode has stopped"
        # units counted since the viewer joined; its first picture may be the bridge's
        # encode of a frame decoded just before (a fresh-clone run counted 59 for 60)
        assert delivery["passthrough_units"] >= 50
        assert received.sizes == {(640, 480)}  # the camera's own stream, not re-encoded
    else:
        assert delivery["frames_encoded"] >= 60
        assert received.sizes == {(640, 480)}  # the default rung: the source, no resize
    assert delivery["viewers"] == 0


async def test_answer_offers_loopback_candidates_only() -> None:
    server = Server(config())
    server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        client = await WhepClient(f"{server.url}whep/demo").connect()
        answer = client.pc.remoteDescription.sdp  # type: ignore[union-attr]
        await client.close()
    candidates = [line for line in answer.splitlines() if line.startswith("a=candidate:")]
    assert candidates
    assert all(line.split()[4] == "127.0.0.1" for line in candidates)


async def test_encode_once_for_many_viewers() -> None:
    server = Server(config())
    stream = server.add_stream("synthetic://?size=640x480&fps=30", name="demo")
    async with server:
        clients = [await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
                   for _ in range(4)]  # fmt: skip
        await asyncio.gather(*(c.wait_frames(30) for c in clients))
        stats = stream.fanout.stats()
        pipeline_frames = stream.pipeline.frames_out
        for c in clients:
            await c.close()
    assert stats["viewers"] == 4
    assert stats["frames_encoded"] <= pipeline_frames  # one encode per frame, not per viewer
    assert stats["frames_sent"] >= 4 * 30


async def test_a_stalled_viewer_does_not_slow_the_others() -> None:
    server = Server(config(viewer_queue=2))
    stream = server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        fast = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        stuck = stream.fanout.add_viewer("stuck")  # never read: its queue fills up
        stream.fanout.viewer_connected("stuck")
        await fast.wait_frames(60)
        assert stuck.track.queue.qsize() <= 2
        assert stuck.track.dropped > 10
        await fast.close()
        stream.fanout.remove_viewer("stuck")


async def http(method: str, url: str, **kwargs: object) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as r:  # type: ignore[arg-type]
        return r.status, await r.text()


async def test_bad_requests_get_clear_4xx() -> None:
    server = Server(config(max_body_bytes=4096, max_viewers=1))
    server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    sdp = {"Content-Type": "application/sdp"}
    async with server:
        base = server.url
        checks = {
            "bad sdp": await http("POST", f"{base}whep/demo", data="hello", headers=sdp),
            "junk sdp": await http(
                "POST", f"{base}whep/demo", data="v=0\r\nm=video x\r\n", headers=sdp
            ),
            "no video": await http(
                "POST", f"{base}whep/demo", data="v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", headers=sdp
            ),
            "content type": await http(
                "POST", f"{base}whep/demo", data="v=0", headers={"Content-Type": "text/plain"}
            ),
            "unknown stream": await http("POST", f"{base}whep/nope", data="v=0", headers=sdp),
            "oversized": await http(
                "POST", f"{base}whep/demo", data="v=0" + "x" * 10000, headers=sdp
            ),
            "patch": await http(
                "PATCH",
                f"{base}whep/demo/abc",
                data="x",
                headers={"Content-Type": "application/trickle-ice-sdpfrag"},
            ),
            "delete unknown": await http("DELETE", f"{base}whep/demo/abc"),
        }
        audio_only = RTCPeerConnection()
        audio_only.addTransceiver("audio", direction="recvonly")
        await audio_only.setLocalDescription(await audio_only.createOffer())
        offer = audio_only.localDescription.sdp.replace("m=audio", "m=video")
        await audio_only.close()
        checks["no common codec"] = await http("POST", f"{base}whep/demo", data=offer, headers=sdp)
        first = await WhepClient(f"{base}whep/demo").connect(read_codes=False)
        with pytest.raises(sl.NegotiationError, match="503"):
            await WhepClient(f"{base}whep/demo").connect()
        await first.close()
    expected = {"bad sdp": 400, "junk sdp": 400, "no video": 400, "content type": 415,
                "unknown stream": 404, "oversized": 413, "patch": 405, "delete unknown": 404,
                "no common codec": 400}  # fmt: skip
    assert {k: v[0] for k, v in checks.items()} == expected
    assert "no codec this stream can send" in checks["no common codec"][1]
    assert all(len(body) < 300 and "Traceback" not in body for _, body in checks.values())


async def test_bearer_token_guards_whep_api_and_metrics() -> None:
    server = Server(config(auth_token="s3cret"))
    server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        base = server.url
        for path in ("api/streams", "metrics"):
            assert (await http("GET", base + path))[0] == 401
            assert (await http("GET", base + path, headers={"Authorization": "Bearer nope"}))[
                0
            ] == 401
            assert (await http("GET", base + path, headers={"Authorization": "Bearer s3cret"}))[
                0
            ] == 200
        assert (await http("POST", base + "whep/demo", data="v=0",
                           headers={"Content-Type": "application/sdp"}))[0] == 401  # fmt: skip
        assert (await http("GET", base + "healthz"))[0] == 200
        client = await WhepClient(base + "whep/demo", token="s3cret").connect(read_codes=False)
        await client.wait_frames(5)
        await client.close()


async def test_refuses_a_public_bind_without_a_token() -> None:
    server = Server(sl.load_config(host="0.0.0.0", port=0))
    with pytest.raises(sl.ConfigError, match="STREAMING_AUTH_TOKEN"):
        await server.start()


async def test_metrics_and_api_reflect_viewers() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    server = Server(config())
    server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        client = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
        await client.wait_frames(10)
        _, text = await http("GET", server.url + "metrics")
        _, api = await http("GET", server.url + "api/streams")
        await client.close()
    viewers = {
        s.labels["stream"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "streamlab_viewers"
    }
    assert viewers == {"demo": 1.0}
    assert '"viewers": 1' in api


async def test_viewer_churn_leaves_nothing_behind() -> None:
    server = Server(config(max_viewers=100, viewer_connect_timeout_s=2))
    stream = server.add_stream("synthetic://?size=320x240&fps=30", name="demo")
    async with server:
        baseline_tasks = len(asyncio.all_tasks())
        for cycle in range(50):
            client = await WhepClient(f"{server.url}whep/demo").connect(read_codes=False)
            if cycle % 10 == 0:
                await client.wait_frames(1)
            await client.close(delete=cycle % 2 == 0)  # half just vanish: no DELETE
        for _ in range(300):
            if not stream.fanout.viewers and not server.sessions:
                break
            await asyncio.sleep(0.1)
        assert stream.fanout.viewers == {}
        assert server.sessions == {}
        await asyncio.sleep(0.5)
        gc.collect()
        peers = [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection)]
        open_peers = [p for p in peers if p.connectionState not in ("closed",)]
        assert open_peers == []
        assert len(asyncio.all_tasks()) <= baseline_tasks + 5
    assert stream.fanout.encoders == {}  # the last viewer left: no encoder runs
